"""The compensation rule (services.claims.compensation): pure, its rule named and its inputs kept."""
import pytest

from server.services.claims import RULE_INSURED, RULE_UNINSURED, compensation


@pytest.mark.parametrize(("insured", "declared", "fees", "loss", "claimed", "rule", "amount"), [
    (True, 20_000, 1_200, 30_000, 50_000, RULE_INSURED, 20_000),     # capped at the declared value
    (True, 20_000, 1_200, 15_000, 50_000, RULE_INSURED, 15_000),     # the loss, under the declared value
    (True, 20_000, 1_200, 30_000, 9_000, RULE_INSURED, 9_000),       # never more than claimed
    (False, 20_000, 1_200, 8_000, 10_000, RULE_UNINSURED, 3_600),    # declared but uninsured: 3 x fees
    (False, None, 1_200, 2_000, 10_000, RULE_UNINSURED, 2_000),      # the loss, under 3 x fees
    (False, None, 0, 2_000, 10_000, RULE_UNINSURED, 0),              # no fees paid, nothing by the fee rule
    (True, None, 1_200, 8_000, 10_000, RULE_UNINSURED, 3_600),       # insured without a value: the fee rule
])
def test_the_rule(insured, declared, fees, loss, claimed, rule, amount):
    """Insured: up to the declared value; uninsured: up to the multiple of fees; never above the claim."""
    decision = compensation(insured=insured, declared_value=declared, fees_paid=fees, loss=loss, claimed=claimed,
                            multiple=3)
    assert (decision["rule"], decision["amount"]) == (rule, amount)
    assert decision["inputs"]["assessed_loss"] == loss and decision["inputs"]["claimed_amount"] == claimed


def test_the_multiple_is_the_setting_given():
    """A company that pays 5 times the fees."""
    assert compensation(insured=False, declared_value=None, fees_paid=1_000, loss=9_000, claimed=9_000,
                        multiple=5)["amount"] == 5_000
