"""The console's home page: for now, the pages the signed-in role may open (the board replaces it)."""
from server.console import bp
from server.console.auth import page, render
from server.console.i18n import register

# Every office role may sign in; integration is a machine's account (bearer tokens only).
CONSOLE_ROLES = ("admin", "dispatcher", "quality", "maintenance")

register({
    "zh": {"home.title": "首页", "home.pages": "你可以打开的页面", "home.none": "暂时没有你可以打开的页面。"},
    "en": {"home.title": "Home", "home.pages": "Pages you can open", "home.none": "No pages for your role yet."},
})


@bp.get("/")
@page(*CONSOLE_ROLES)
def home():
    """The signed-in user's starting page: the navigation, spelled out."""
    return render("console/home.html")
