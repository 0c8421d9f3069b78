"""README.md's copy-paste commands, run against a live server, so the quick start can't rot."""

import re
import subprocess

from tests.helpers import ROOT, request

# A bash block runs unless the line right before it says it must not (servers, installs, production).
BLOCK = re.compile(r"(<!-- not run -->\n)?```bash\n(.*?)```", re.DOTALL)

# The README's 1,000-order loop, made small enough for the suite; the load test and make bench send the 1,000.
LOOP = re.compile(r"\bseq 1 \d+\b")
LOOP_ORDERS = 20

# A reader sees an HTTP error or a refused connection; make the block fail on one as well.
STRICT_CURL = 'curl() { command curl --fail-with-body --silent --show-error --max-time 30 "$@"; }\n'


def runnable_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [body for not_run, body in BLOCK.findall(text) if not not_run]


def test_readme_commands_work_against_a_live_server(server):
    blocks = runnable_blocks()
    assert blocks, "README.md has no bash block to run"
    _, placed = request(server.url, "POST", "/api/orders/", {"user_id": "u", "item_ids": [1], "total_amount": 5})

    for block in blocks:
        script = block.replace("http://localhost:8000", server.url).replace("<order_id>", placed["order_id"])
        script = LOOP.sub(f"seq 1 {LOOP_ORDERS}", script)
        result = subprocess.run(
            ["bash", "-e", "-u", "-o", "pipefail", "-c", STRICT_CURL + script],
            capture_output=True,
            text=True,
            timeout=120,
        )

        assert result.returncode == 0, f"{block}\nfailed:\n{result.stdout[-300:]}\n{result.stderr[-1000:]}"
        if LOOP.search(block):
            # The README promises the loop prints "1000 201": every order accepted. (The answers before it end
            # without a newline, so the count may follow one of them on its line.)
            assert re.search(rf"(?<!\d){LOOP_ORDERS} 201$", result.stdout, re.MULTILINE), result.stdout[-300:]
