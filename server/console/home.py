"""The console's roles, and the start page of a role without a board: the pages it may open (server.console.board
serves /console, the board for the office)."""
from server.console.i18n import register

# Every office role may sign in; integration is a machine's account (bearer tokens only).
CONSOLE_ROLES = ("admin", "dispatcher", "quality", "maintenance")

register({
    "zh": {"home.title": "首页", "home.pages": "你可以打开的页面", "home.none": "暂时没有你可以打开的页面。"},
    "en": {"home.title": "Home", "home.pages": "Pages you can open", "home.none": "No pages for your role yet."},
})
