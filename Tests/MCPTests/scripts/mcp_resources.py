"""Scenario: long outputs and large records: replies cut, resources read in parts and pages."""

import json

from mcp_fixture import iserr, result_of, expect, with_session


async def long_output(fx):
    """A long output: the reply carries its head and tail, the journal all of it; records
    too large for one read (a long output, a long argv) are read in parts, and the run a page
    at a time, each read under 384 KiB (the official client's 1 MiB limit on one event)."""
    async def body(s):
        # A reply carries the head and tail of a long output (64 KiB by default); the journal
        # keeps all of it, and its step resource gives it back.
        big = "head -c 300000 /dev/zero | tr '\\0' a; echo; echo the-end"
        for i in range(6):
            r = await s.call_tool("run_command", {"command": big, "step_id": f"big-{i}"})
            out = result_of(r)
            expect(out["stdout_truncated"] is True and len(out["stdout"].encode()) <= (64 << 10) + 100
                   and out["stdout"].startswith("aaaa") and out["stdout"].endswith("a\nthe-end\n")
                   and "bytes left out of this reply" in out["stdout"],
                   "a long output's head and tail, marked, in the reply", (len(out["stdout"]), out["stdout"][-60:]))
            expect(len(r.content) == 2 and f"lanes://runs/longout/steps/big-{i}" in r.content[1].text,
                   "the reply says where the whole output is", [c.text[:200] for c in r.content[1:]])
        # Cut at character boundaries: 5-byte lines of a 4-byte character; neither cut (32 KiB from
        # each end of 500,000 bytes) falls between two.
        r = await s.call_tool("run_command", {"command": "yes 🙂 | head -n 100000", "step_id": "wide"})
        out = result_of(r)["stdout"]
        expect(out.startswith("🙂\n") and out.endswith("🙂\n") and "\ufffd" not in out and out.count("🙂") > 12000,
               "a cut never splits a character", (out[:10], out[-10:], out.count("\ufffd")))
        whole = json.loads((await s.read_resource("lanes://runs/longout/steps/big-0")).contents[0].text)
        close = [x for x in whole["records"] if x["kind"] == "close"][0]["body"]["result"]
        expect(len(close["stdout"]) == 300009 and close["stdout_truncated"] is False, "the journal has the whole output",
               len(close["stdout"]))
        # An output too large for one read over Streamable HTTP (the official client refuses an
        # event over 1 MiB): its record names the output's parts instead of holding it, and the
        # parts give back every byte of what the journal keeps.
        # 21-byte lines: the first part's 262,144 bytes would end inside a 🙂.
        r = await s.call_tool("run_command", {"command": "yes '🙂 é \"q\" \\\\ 0123\t' | head -c 2500000",
                                              "step_id": "huge"})
        expect(len(r.content) == 2 and "lanes://runs/longout/steps/huge/stdout" in r.content[1].text,
               "the reply names the URI of the whole stdout", [c.text[:300] for c in r.content[1:]])
        text = (await s.read_resource("lanes://runs/longout/steps/huge")).contents[0].text
        close = [x for x in json.loads(text)["records"] if x["kind"] == "close"][0]
        expect(len(text.encode()) <= 384 << 10 and close["body_complete"] is False and close["body"] is None
               and close["output"]["stdout"] == "lanes://runs/longout/steps/huge/stdout",
               "a record too large for one read leaves its body out and names its parts", (len(text), text[:600]))
        kept = json.loads([b for (_, k, st, b) in fx.records("longout") if k == "close" and st == "huge"][0])["result"]["stdout"]
        uri, got, offsets = close["output"]["stdout"], "", []
        while uri:
            text = (await s.read_resource(uri)).contents[0].text
            part = json.loads(text)
            expect(len(text.encode()) <= 384 << 10 and part["offset"] == len(got.encode())
                   and part["total_bytes"] == len(kept.encode()), "a part fits one read and follows the last", (len(text), part["offset"]))
            got, uri = got + part["text"], part["next"]
            offsets.append(part["offset"])
            expect(len(offsets) <= 40, "parts end", offsets)
        expect(got == kept and len(offsets) >= 10, "the parts are the whole output, in order", (len(got), len(kept), len(offsets)))
        # A long argv (12 arguments of 100 kB) makes an intent too large for one read: it comes
        # without its body and names the body's parts, which give back the body exactly as it
        # was hashed; so do the big close record's.
        r = await s.call_tool("run_command", {"argv": ["true"] + ["y" * 100000] * 12, "step_id": "longargv"})
        expect(iserr(r) is False, "a step with 1.2 MB of arguments runs", result_of(r))
        text = (await s.read_resource("lanes://runs/longout/steps/longargv")).contents[0].text
        intent = [x for x in json.loads(text)["records"] if x["kind"] == "intent"][0]
        expect(len(text.encode()) <= 384 << 10 and intent["body"] is None and intent["body_complete"] is False
               and intent["body_parts"] == f"lanes://runs/longout/records/{intent['seq']}",
               "an intent too large for one read names its body's parts", text[:600])
        for record in (intent, close):
            kept = [b for (seq, _, _, b) in fx.records("longout") if seq == record["seq"]][0]
            uri, body, n = record["body_parts"], "", 0
            while uri:
                text = (await s.read_resource(uri)).contents[0].text
                part = json.loads(text)
                expect(len(text.encode()) <= 384 << 10 and part["seq"] == record["seq"] and part["hash"] == record["hash"]
                       and part["offset"] == len(body.encode()), "a body part fits one read and follows the last", (len(text), part["offset"]))
                body, uri, n = body + part["text"], part["next"], n + 1
                expect(n <= 100, "body parts end", n)
            expect(body == kept and record["body_bytes"] == len(kept.encode()), "the parts are the body as recorded", (len(body), len(kept)))
        expect(json.loads(body)["result"]["stdout"] == got, "the close body's parts hold the whole output", None)
        for bad, word in [("lanes://runs/longout/steps/huge/stdin", "stdout"), ("lanes://runs/longout/steps/huge/stdout?after_seq=1", "offset"),
                          ("lanes://runs/longout/records/0", "SEQ"), ("lanes://runs/longout/records/x", "SEQ"),
                          ("lanes://runs/longout/records/999999", "no record"), ("lanes://runs/longout/records/1?after_seq=1", "offset"),
                          ("lanes://runs/longout/steps/huge/stdout?offset=-1", "offset"),
                          ("lanes://runs/longout/steps/huge/stderr?offset=99", "past the end")]:
            try:
                await s.read_resource(bad)
                raise AssertionError(f"{bad}: expected a protocol error")
            except AssertionError:
                raise
            except Exception as e:
                expect(word in str(e), f"{bad}: the error says what is expected", str(e))
        # The run's records (now past 1.8 MB) are read a page at a time: each read stays under
        # 384 KiB, and following `next` gives every record once, in order.
        uri, seqs, pages = "lanes://runs/longout", [], 0
        while uri:
            text = (await s.read_resource(uri)).contents[0].text
            doc = json.loads(text)
            expect(len(doc["records"]) >= 1 and len(text.encode()) <= 384 << 10,
                   "a page holds at least one record and stays under 384 KiB", (len(doc["records"]), len(text)))
            seqs += [x["seq"] for x in doc["records"]]
            uri, pages = doc["next"], pages + 1
            expect(pages <= 40, "paging ends", uri)
        every = [row[0] for row in fx.records("longout")]
        expect(seqs == every, "every record once, in order", (len(seqs), len(every)))
        expect(pages >= 4, "a run of 1.8 MB takes several reads", pages)
        for bad in ("lanes://runs/longout?after_seq=x", "lanes://runs/longout?seq=1", "lanes://runs/longout/steps/1?after_seq=1"):
            try:
                await s.read_resource(bad)
                raise AssertionError(f"{bad}: expected a protocol error")
            except Exception as e:
                expect("after_seq" in str(e), f"{bad}: the error says what is expected", str(e))
    await with_session(fx, "plain", "longout", body)
    print("ok: long outputs cut in replies, whole in the journal; records and outputs read in parts; the run paged")
