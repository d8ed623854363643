# gantry web page end to end in Debian's Chromium through Playwright (run by crates/gantry-cli/tests/web.rs; never downloads a browser).
#
# Environment: GANTRY_URL (http://127.0.0.1:PORT), OPERATOR_TOKEN, ARTIFACTS (screenshot dir),
# MODE ("stack": the full scenario; "hundred": the first render of a 100-service stack),
# SERVICES (how many service nodes to expect), INGRESS_PORT (stack mode); "reconnect": the page
# survives a restart of gantry on the same address (it asks the test to restart gantry by
# creating the file RESTART_REQUEST, then waits for the stream to come back).
# Every wait polls with a deadline; figures are printed as one JSON line prefixed `RESULT `.
import gzip
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request

from playwright.sync_api import sync_playwright

URL = os.environ["GANTRY_URL"].rstrip("/")
ARTIFACTS = os.environ["ARTIFACTS"]
MODE = os.environ.get("MODE", "stack")
EXPECT = int(os.environ.get("SERVICES", "0"))
WAIT_MS = 20_000
# Network errors the browser logs while gantry is deliberately down (reconnect mode only).
OUTAGE_ERRORS = ["ERR_CONNECTION_REFUSED", "ERR_INCOMPLETE_CHUNKED_ENCODING", "ERR_EMPTY_RESPONSE",
                 "ERR_CONNECTION_RESET", "ERR_CONNECTION_CLOSED"]

os.makedirs(ARTIFACTS, exist_ok=True)

# Set before any page script runs: the moment every expected service node is in the graph
# (performance.now(): milliseconds since the navigation started). Init scripts are not subject
# to the page's CSP.
INIT = """
(() => {
  const expect = %d;
  window.__drawnAt = null;
  window.__states = {};
  const check = () => {
    const nodes = document.querySelectorAll('#graph .node');
    if (window.__drawnAt === null && expect > 0 && nodes.length >= expect) window.__drawnAt = performance.now();
    for (const n of nodes) {
      const name = n.getAttribute('data-service'), st = n.getAttribute('data-state');
      const seen = window.__states[name] || (window.__states[name] = []);
      if (seen[seen.length - 1] !== st) seen.push(st);
    }
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state'] });
})();
""" % EXPECT


def api(path):
    with urllib.request.urlopen(URL + path, timeout=5) as r:
        return json.load(r)


def post(path, body, token):
    req = urllib.request.Request(URL + path, method="POST", data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def ingress(method, port):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/health", method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def poll(what, fn, secs=20):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out after {secs} s waiting for: {what}")


def page_weight():
    """Bytes of the page and its assets, as served and gzip-compressed (level 9)."""
    raw = comp = 0
    for path in ["/", "/ui/style.css", "/ui/app.js", "/ui/views.js", "/ui/graph.js", "/ui/favicon.svg"]:
        with urllib.request.urlopen(URL + path, timeout=5) as r:
            body = r.read()
        raw += len(body)
        comp += len(gzip.compress(body, 9))
    return raw, comp


def main():
    errors = []
    figures = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        context.add_init_script(INIT)
        page = context.new_page()
        warnings = []
        outage = []  # non-empty while gantry is deliberately down (reconnect mode)

        def on_console(m):
            if m.type == "error":
                # While gantry is down, the browser reports the cut event stream and the refused
                # connections of the page's retries: expected then, counted apart; anything else
                # is an error.
                if outage and any(e in m.text for e in OUTAGE_ERRORS):
                    figures.setdefault("outage_network_errors", []).append(m.text)
                else:
                    errors.append(f"console.error: {m.text}")
            elif m.type == "warning":
                warnings.append(m.text)

        page.on("console", on_console)
        figures["_outage"] = outage
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        page.on("requestfailed", lambda r: None if "/api/v1/events" in r.url or outage
                else errors.append(f"requestfailed: {r.url} {r.failure}"))

        try:
            run(page, context, figures, errors)
        except Exception:
            page.screenshot(path=os.path.join(ARTIFACTS, f"{MODE}-failure.png"), full_page=True)
            print("states seen:", page.evaluate("() => window.__states"), file=sys.stderr)
            print("drawn at:", page.evaluate("() => [window.__drawnAt, document.querySelectorAll('#graph .node').length]"), file=sys.stderr)
            print("console:", errors, file=sys.stderr)
            raise
        browser.close()
    figures.pop("_outage", None)
    figures["console_warnings"] = warnings
    figures["console_errors"] = errors
    print("RESULT " + json.dumps(figures), flush=True)
    assert not errors, f"console errors: {errors}"


def run(page, context, figures, errors):
    t0 = time.monotonic()
    response = page.goto(URL + "/")
    headers = response.headers
    assert "default-src 'none'" in headers.get("content-security-policy", ""), headers
    assert headers.get("x-content-type-options") == "nosniff", headers
    page.wait_for_function("() => window.__drawnAt !== null", timeout=WAIT_MS)
    figures["first_render_ms"] = round(page.evaluate("() => window.__drawnAt"), 1)
    figures["first_render_wall_ms"] = round((time.monotonic() - t0) * 1000, 1)
    page.wait_for_function(
        "() => document.querySelectorAll('#graph .node[data-state=ready]').length === %d" % EXPECT, timeout=WAIT_MS)
    figures["all_ready_drawn_ms"] = round(page.evaluate("() => performance.now()"), 1)
    raw, comp = page_weight()
    figures["page_bytes"] = raw
    figures["page_bytes_gzip"] = comp
    page.screenshot(path=os.path.join(ARTIFACTS, f"{MODE}-graph.png"), full_page=True)

    if MODE == "stack":
        stack_scenario(page, context, figures)
    elif MODE == "reconnect":
        reconnect_scenario(page, figures)

    # Phone width: every view fits 390 px (wide content scrolls inside its own box).
    page.set_viewport_size({"width": 390, "height": 844})
    overflow = {}
    for view in ["stack", "boot", "service", "traffic", "control", "incidents"]:
        page.click(f"#tab-{view}")
        overflow[view] = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        page.screenshot(path=os.path.join(ARTIFACTS, f"{MODE}-phone-{view}.png"), full_page=True)
    page.click("#tab-stack")
    figures["phone_horizontal_overflow_px"] = max(overflow.values())
    assert all(v <= 0 for v in overflow.values()), f"wider than a 390 px phone: {overflow}"


def stack_scenario(page, context, figures):
    token = os.environ["OPERATOR_TOKEN"]
    ing = int(os.environ["INGRESS_PORT"])
    node = lambda name: f"#graph .node[data-service='{name}']"

    # The graph shows layers and the critical path (db -> api: the worker is the shorter branch).
    assert "[data]" in page.text_content(node("db")), page.text_content(node("db"))
    page.wait_for_selector(node("api") + ".crit", timeout=WAIT_MS)

    # Keyboard: a node opens its service with Enter; the tabs switch with the arrow keys.
    page.focus(node("api"))
    page.keyboard.press("Enter")
    page.wait_for_selector("#svc-title:has-text('api')", timeout=WAIT_MS)
    page.click("#tab-stack")

    page.focus("#tab-stack")
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("#tab-boot", "aria-selected") == "true"
    page.wait_for_selector("#waterfall svg rect", timeout=WAIT_MS)
    page.screenshot(path=os.path.join(ARTIFACTS, "stack-boot.png"), full_page=True)
    page.keyboard.press("ArrowLeft")

    # A service killed by the test turns red (failed) without a reload.
    worker = next(s for s in api("/api/v1/status")["services"] if s["name"] == "worker")
    os.kill(worker["pid"], signal.SIGKILL)
    page.wait_for_selector(node("worker") + "[data-state=failed] rect.s-bad", timeout=WAIT_MS)
    page.screenshot(path=os.path.join(ARTIFACTS, "stack-killed.png"), full_page=True)

    # Without a session an action is refused, and the page says so; the server refuses it too.
    page.click("#tab-control")
    page.select_option("#act-service", "worker")
    page.click("#actions [data-action=start]")
    page.click("#confirm-ok")
    page.wait_for_function("() => document.querySelector('#action-result').textContent.startsWith('Refused')", timeout=WAIT_MS)
    refused = page.text_content("#action-result")
    direct = context.request.post(URL + "/api/v1/services/worker/start")
    assert direct.status == 401, f"the API accepted an action without a session: {direct.status}"
    figures["refused_text"] = refused
    page.screenshot(path=os.path.join(ARTIFACTS, "stack-refused.png"), full_page=True)

    # The critical worker's death pages (P0) and opens an incident before anyone acts.
    poll("an open incident", lambda: any(i["status"] == "open" for i in api("/api/v1/incidents")["incidents"]))

    # Entering the operator token once gives a session; the Start button brings the worker back.
    page.fill("#token-input", token)
    page.press("#token-input", "Enter")
    page.wait_for_selector("#who:has-text('operator')", timeout=WAIT_MS)
    assert token not in page.url
    cookies = context.cookies()
    session = [c for c in cookies if c["name"] == "gantry_session"]
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict", cookies
    assert session[0]["value"] != token
    # The service view opens with the tail of the worker's log file (GET .../logs): the line the
    # first incarnation printed at start.
    started = "fixture web-worker started pid"
    count = "() => document.querySelector('#log').textContent.split('\\n').filter(l => l.includes('%s')).length" % started
    page.click("#tab-stack")
    page.click(node("worker"))
    assert page.get_attribute("#tab-service", "aria-selected") == "true"
    page.wait_for_selector(f"#log:has-text('{started}')", timeout=WAIT_MS)
    assert page.evaluate(count) == 1, page.text_content("#log")

    page.click("#tab-control")
    page.fill("#act-reason", "web test: bring the worker back")
    page.select_option("#act-service", "worker")
    page.click("#actions [data-action=start]")
    page.click("#confirm-ok")
    page.wait_for_function("() => document.querySelector('#action-result').className.includes('ok')", timeout=WAIT_MS)
    page.wait_for_selector(node("worker") + "[data-state=ready] rect.s-ok", state="attached", timeout=WAIT_MS)
    seen = page.evaluate("() => window.__states['worker']")
    assert seen[0] == "ready" and "failed" in seen and seen[-1] == "ready", seen
    figures["worker_states"] = seen

    # The new incarnation's first line reaches the open log tail live, from the event stream.
    page.click("#tab-service")
    page.wait_for_function(count.replace(".length", ".length === 2"), timeout=WAIT_MS)
    page.fill("#log-search", "started pid")
    page.wait_for_function(count.replace(".length", ".length === 2"), timeout=WAIT_MS)
    page.fill("#log-search", "no such text anywhere")
    page.wait_for_selector("#log:has-text('(no line matches)')", timeout=WAIT_MS)
    page.fill("#log-search", "")
    page.screenshot(path=os.path.join(ARTIFACTS, "stack-service.png"), full_page=True)

    # write_drain on through the page: the ingress answers 503 to a POST, reads still pass.
    assert ingress("POST", ing) == 405, "before write_drain the fixture answers 405 to a POST"
    page.click("#tab-control")
    page.wait_for_selector("[data-flag=write_drain][data-on=false]", timeout=WAIT_MS)
    page.fill("[data-flag=write_drain] input[aria-label='reason for write_drain']", "web test: drain writes")
    page.click("[data-flag=write_drain] button")
    page.click("#confirm-ok")
    page.wait_for_selector("[data-flag=write_drain][data-on=true]", timeout=WAIT_MS)
    poll("503 to a POST through the ingress", lambda: ingress("POST", ing) == 503)
    assert ingress("GET", ing) == 200
    page.wait_for_selector("[data-flag=write_drain]:has-text('set by operator')", timeout=WAIT_MS)
    page.screenshot(path=os.path.join(ARTIFACTS, "stack-control.png"), full_page=True)

    # Traffic shows the mode in force; the incidents view shows the audit rows with the token's actor.
    page.click("#tab-traffic")
    page.wait_for_selector("#ingress-mode:has-text('write_drain')", timeout=WAIT_MS)
    page.screenshot(path=os.path.join(ARTIFACTS, "stack-traffic.png"), full_page=True)
    page.click("#tab-incidents")
    page.wait_for_selector("#audit td:has-text('service.start')", timeout=WAIT_MS)
    page.wait_for_selector("#audit td:has-text('flag.set')", timeout=WAIT_MS)
    page.wait_for_selector("#audit td:has-text('web test: drain writes')", timeout=WAIT_MS)
    # The kill of the critical worker paged (P0) and opened an incident; its timeline has the
    # operator's start through the page, and the post-incident draft is there.
    page.wait_for_selector("#incidents td:has-text('critical service worker is down')", timeout=WAIT_MS)
    page.click("#incidents [data-incident]")
    page.wait_for_selector("#incident td:has-text('service.start worker by operator: web test: bring the worker back')", timeout=WAIT_MS)
    page.wait_for_selector("#incident pre.draft:has-text('# Incident')", timeout=WAIT_MS)
    page.screenshot(path=os.path.join(ARTIFACTS, "stack-incidents.png"), full_page=True)

    # An incident opened by hand is acknowledged, then resolved, from the page.
    poll("the P0 incident resolved", lambda: all(i["status"] == "resolved" for i in api("/api/v1/incidents")["incidents"]))
    post("/api/v1/incidents", {"severity": "P2", "title": "opened by the web test"}, token)
    page.click("#tab-stack")
    page.click("#tab-incidents")
    page.wait_for_selector("#incidents tr:has-text('opened by the web test') [data-incident-act=ack]", timeout=WAIT_MS)
    page.click("#incidents tr:has-text('opened by the web test') [data-incident-act=ack]")
    page.click("#confirm-ok")
    poll("the incident acknowledged", lambda: any(i["status"] == "acknowledged" for i in api("/api/v1/incidents")["incidents"]))
    page.wait_for_selector("#incidents tr:has-text('opened by the web test') [data-incident-act=resolve]", timeout=WAIT_MS)
    page.click("#incidents tr:has-text('opened by the web test') [data-incident-act=resolve]")
    page.click("#confirm-ok")
    poll("the incident resolved", lambda: all(i["status"] == "resolved" for i in api("/api/v1/incidents")["incidents"]))

    # Bounded memory: a service view keeps a fixed window of log lines (400). chatty printed about
    # 300 lines at start: all of them from the file; a restart streams as many again: the window
    # is full, and stays at 400.
    # (gantry writes log files every 250 ms: wait until the file has the ready line.)
    def flushed():
        got = api("/api/v1/services/chatty/logs?tail=1000")["lines"]
        return got if got and got[-1]["line"] == "fixture web-chatty ready" else None

    first = len(poll("chatty's whole first output in its log file", flushed))
    assert 200 < first < 400, first
    lines = "() => document.querySelector('#log').childElementCount"
    page.click("#tab-stack")
    page.click(node("chatty"))
    page.wait_for_function(lines.replace("Count", "Count === %d" % first), timeout=WAIT_MS)
    page.click("#tab-control")
    page.select_option("#act-service", "chatty")
    page.click("#actions [data-action=restart]")
    page.click("#confirm-ok")
    page.wait_for_function("() => document.querySelector('#action-result').textContent.startsWith('restart chatty')", timeout=WAIT_MS)
    page.click("#tab-service")
    page.wait_for_function(lines.replace("Count", "Count === 400"), timeout=WAIT_MS)
    figures["log_window_lines"] = page.evaluate(lines)
    figures["js_heap_used_bytes"] = page.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : null")

    # Sign out: the cookie's session is gone.
    page.click("#logout")
    page.wait_for_selector("#login:not([hidden])", timeout=WAIT_MS)
    page.click("#tab-stack")


def reconnect_scenario(page, figures):
    token = os.environ["OPERATOR_TOKEN"]
    page.wait_for_selector("#conn:has-text('live')", timeout=WAIT_MS)
    page.fill("#token-input", token)
    page.press("#token-input", "Enter")
    page.wait_for_selector("#who:has-text('operator')", timeout=WAIT_MS)
    opens = int(page.get_attribute("#conn", "data-opens"))
    before = api("/api/v1/status")["services"][0]["pid"]
    # gantry goes away (the test restarts it on the same address): the page says it reconnects ...
    figures["_outage"].append(time.monotonic())
    open(os.environ["RESTART_REQUEST"], "w").close()
    page.wait_for_selector("#conn.conn-retry", timeout=WAIT_MS)
    page.screenshot(path=os.path.join(ARTIFACTS, "reconnect-down.png"), full_page=True)
    # ... and is live again with the new gantry's state, without a reload.
    page.wait_for_function("(n) => Number(document.querySelector('#conn').dataset.opens) > n && "
                           "document.querySelector('#conn').textContent === 'live'", arg=opens, timeout=60_000)
    figures["reconnected_after_ms"] = round((time.monotonic() - figures["_outage"][0]) * 1000)
    figures["_outage"].clear()
    after = poll("the new gantry's service", lambda: next(
        (s["pid"] for s in api("/api/v1/status")["services"] if s["pid"] and s["pid"] != before and s["state"] == "ready"), None))
    page.wait_for_selector("#graph .node[data-state=ready]", timeout=WAIT_MS)
    # The old gantry's session died with it: the page shows the sign-in form again.
    page.wait_for_selector("#login:not([hidden])", timeout=WAIT_MS)
    figures["new_pid"] = after
    page.screenshot(path=os.path.join(ARTIFACTS, "reconnect-up.png"), full_page=True)


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
