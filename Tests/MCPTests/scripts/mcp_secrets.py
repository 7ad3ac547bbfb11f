"""Scenario: a lane's credential reaches its steps and nothing the MCP client or the log sees."""

import base64
import glob
import json
import os
import urllib.parse

from mcp_fixture import expect, result_of, with_session

SECRET = "s3cr3t-Lanes-MCP-Value-8842"


def dump(obj):
    """Everything in a client-side result, as text."""
    return obj.model_dump_json() if hasattr(obj, "model_dump_json") else json.dumps(obj, default=str)


async def secrets(fx):
    """The step gets TOKEN and prints it, plainly, base64'd and at the end of 400 kB of output.
    Every reply, progress message, run_status, resource, output part and body part the client
    receives, the server's log (LANES_LOG=debug) and the journal's files hold `[redacted:TOKEN]`
    and never the value, nor its base64 or URL-encoded forms."""
    seen = []
    log_path = os.path.join(fx.dir, "server.log")
    leak = ("echo $TOKEN; echo $TOKEN >&2; printf %s \"$TOKEN\" | base64; sleep 1.2; "
            "head -c 400000 /dev/zero | tr '\\0' x; echo; echo \"tail $TOKEN\"")

    async def body(s):
        async def on_progress(p, total, message):
            seen.append(message)
        r = await s.call_tool("run_command", {"command": leak, "step_id": "leak"}, progress_callback=on_progress)
        seen.append(dump(r))
        rep = result_of(r)
        expect(rep["stdout"].startswith("[redacted:TOKEN]\n") and rep["stdout"].endswith("tail [redacted:TOKEN]\n")
               and rep["stderr"] == "[redacted:TOKEN]\n", "the step printed the credential, redacted", rep["stdout"][:200])
        expect(len(seen) >= 2, "progress messages were seen too", seen[:1])
        seen.append(dump(await s.call_tool("run_command", {"command": leak, "step_id": "leak"})))  # a replay
        seen.append(dump(await s.call_tool("run_status", {})))
        uris = ["lanes://runs/secrets", "lanes://runs/secrets/steps/leak"]
        step = json.loads((await s.read_resource(uris[1])).contents[0].text)
        close = [x for x in step["records"] if x["kind"] == "close"][0]
        expect(close.get("body_parts") and close.get("output"), "the 400 kB record is read in parts", list(close))
        uris += [close["body_parts"], close["output"]["stdout"], close["output"]["stderr"]]
        for uri in uris:
            while uri:
                text = (await s.read_resource(uri)).contents[0].text
                seen.append(text)
                uri = json.loads(text).get("next")
    with open(log_path, "w") as errlog:
        await with_session(fx, "cred", "secrets", body, env={"LANES_TEST_TOKEN": SECRET, "LANES_LOG": "debug"},
                           errlog=errlog)
    forms = [SECRET, base64.b64encode(SECRET.encode()).decode().rstrip("="),
             base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="), urllib.parse.quote(SECRET, safe="")]
    received = "\n".join(seen)
    with open(log_path) as f:
        log = f.read()
    expect("run secrets" in log, "the server's log was captured", log[:300])
    journal = b"".join(open(p, "rb").read() for p in glob.glob(os.path.join(fx.state, "journal.sqlite*")))
    for form in forms:
        expect(form not in received, "the client never receives the credential", form)
        expect(form not in log, "the server's log never holds the credential", form)
        expect(form.encode() not in journal, "the journal's files never hold the credential", form)
    expect("[redacted:TOKEN]" in received, "what the client received was redacted, not empty", None)
    print(f"ok: a credential never reaches the client, the log or the journal ({len(seen)} messages, {len(received)} bytes checked)")
