"""The gateway's web page in a real browser (Debian's Chromium, driven by
Playwright), against real gateways the Rust test `web_browser` started:

  WEB_URL     a gateway with --web, token auth, --record-dir, console "lab"
              (an interactive shell)
  HELD_URL    a gateway with --web --hold and a short --web-session, console
              "boot" (prints BOOT-MARK-42 at start, before anyone attaches)
  WEB_TOKEN   the gateway's token
  SHOTS       where the screenshots go

Each step asserts what a person at the page would see; the first failure
ends the script with a message naming the step (exit 1).
"""
import os
import re
import sys
import time

from playwright.sync_api import expect, sync_playwright

URL = os.environ["WEB_URL"].rstrip("/")
HELD = os.environ["HELD_URL"].rstrip("/")
TOKEN = os.environ["WEB_TOKEN"]
SHOTS = os.environ["SHOTS"]
SESSION_SECS = float(os.environ.get("HELD_SESSION_SECS", "10"))


def step(what):
    print(f"== {what}", flush=True)


def sign_in(page, base, name, token=TOKEN):
    page.goto(base + "/")
    page.get_by_label("Gateway token").fill(token)
    page.get_by_label("Your name (shown to others on a console)").fill(name)
    page.get_by_role("button", name="Sign in").click()


def terminal(page):
    return page.locator("#terminal .xterm-rows")


def no_console_names(page, *names):
    html = page.content()
    for name in names:
        assert f"/consoles/{name}" not in html and f">{name}<" not in html, (
            f"{name!r} shown to someone not signed in:\n{html}"
        )


def main():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        csp_violations = []

        def new_page():
            context = browser.new_context(viewport={"width": 1100, "height": 760})
            page = context.new_page()
            page.on(
                "console",
                lambda m: csp_violations.append(m.text)
                if "Content Security Policy" in m.text
                else None,
            )
            return page

        alice = new_page()
        step("not signed in: the sign-in form, no console's name")
        alice.goto(URL + "/")
        expect(alice.get_by_label("Gateway token")).to_have_attribute("type", "password")
        no_console_names(alice, "lab")
        alice.goto(URL + "/consoles/lab")
        no_console_names(alice, "lab")

        step("a wrong token: told so, nothing shown")
        sign_in(alice, URL, "eve", "not-the-token-at-all")
        expect(alice.get_by_role("alert")).to_contain_text("not this gateway's token")
        no_console_names(alice, "lab")

        step("signed in: the consoles list")
        sign_in(alice, URL, "alice")
        lab = alice.get_by_role("link", name="lab", exact=True)
        expect(lab).to_be_visible()
        expect(alice.get_by_role("row", name=re.compile(r"^lab\b"))).to_contain_text("free")

        step("a console: type and see the echo")
        lab.click()
        expect(alice.locator("#status")).to_have_text("connected: writing")
        expect(terminal(alice)).to_contain_text("$", timeout=10_000)
        alice.locator("#terminal").click()
        alice.keyboard.type("echo hello-$((6*7))\n")
        expect(terminal(alice)).to_contain_text("hello-42", timeout=10_000)

        step("a second browser watches read-only and sees it")
        bob = new_page()
        sign_in(bob, URL, "bob")
        row = bob.get_by_role("row", name=re.compile(r"^lab\b"))
        expect(row).to_contain_text("in use")
        expect(row).to_contain_text("alice")
        bob.get_by_role("link", name="lab", exact=True).click()
        expect(bob.locator("#status")).to_have_text("connected: watching read-only")
        expect(terminal(bob)).to_contain_text("hello-42", timeout=10_000)
        expect(alice.locator("#viewers")).to_contain_text("bob")

        step("the writer's next command reaches the viewer live")
        alice.locator("#terminal").click()
        alice.keyboard.type("echo live-$((2*3))\n")
        expect(terminal(bob)).to_contain_text("live-6", timeout=10_000)

        step("the viewer cannot type")
        bob.locator("#terminal").click()
        bob.keyboard.type("echo nope-$((1+1))\n")
        time.sleep(1.5)
        assert "nope-2" not in terminal(alice).inner_text(), "a viewer's keys reached the console"
        assert "nope-2" not in terminal(bob).inner_text(), "a viewer's keys reached the console"
        alice.screenshot(path=os.path.join(SHOTS, "web-console.png"))
        bob.screenshot(path=os.path.join(SHOTS, "web-console-viewer.png"))

        step("the session's recording is listed and plays")
        alice.get_by_role("link", name="Recordings").click()  # leaving ends the session
        cast = None
        for _ in range(40):
            links = alice.get_by_role("link", name=re.compile(r"^lab-.*\.cast$"))
            if links.count() > 0:
                cast = links.first.inner_text()
                break
            time.sleep(0.25)
            alice.reload()
        assert cast, "no recording of the session is listed"
        expect(alice.get_by_role("row", name=re.compile(re.escape(cast)))).to_contain_text("alice")
        alice.get_by_role("link", name=cast, exact=True).click()
        with alice.expect_download() as download:
            alice.get_by_role("link", name=f"Download {cast}").click()
        saved = open(download.value.path(), encoding="utf-8").read()
        assert "hello-42" in saved and re.search(r'"version":\s*2', saved), saved[:300]
        player = alice.locator("#player")
        expect(player.locator(".ap-player")).to_be_visible(timeout=10_000)
        player.click()  # start playing
        expect(player).to_contain_text("hello-42", timeout=20_000)
        alice.screenshot(path=os.path.join(SHOTS, "web-recording.png"))

        step("a held console shows what it printed while nobody was attached")
        carol = new_page()
        signed_in_at = time.monotonic()
        sign_in(carol, HELD, "carol")
        carol.get_by_role("link", name="boot", exact=True).click()
        expect(terminal(carol)).to_contain_text("BOOT-MARK-42", timeout=10_000)
        expect(terminal(carol)).to_contain_text("--- live ---", timeout=10_000)

        step("an expired session sees nothing")
        time.sleep(max(0.0, SESSION_SECS + 1 - (time.monotonic() - signed_in_at)))
        carol.goto(HELD + "/")
        expect(carol.get_by_label("Gateway token")).to_be_visible()
        no_console_names(carol, "boot")

        assert not csp_violations, f"the page broke its own policy: {csp_violations}"
        browser.close()
    print("browser: all steps passed", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the step printed last is the one that failed
        print(f"FAILED: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
