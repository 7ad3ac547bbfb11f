import Foundation
import LaneJournal
import LaneModel
import LaneRuntime
import MCP

/// What the server shows of the journal: `run_status`, the resources `lanes://runs/RUN` (a page
/// at a time) and `lanes://runs/RUN/steps/STEP` (only runs of this server's lane), and waiting
/// for an approval.
struct RunViews: Sendable {
    let service: StepService
    let lane: String
    let run: String

    func resources() -> [Resource] {
        [Resource(name: "run \(run)", uri: "lanes://runs/\(run)",
                  description: "The journal of this server's run: its records (run, intent, close, decision) with their hash chain, up to 384 KiB per read; `next` names the URI of the rest (lanes://runs/RUN?after_seq=N), or is null.",
                  mimeType: "application/json")]
    }

    func templates() -> [Resource.Template] {
        [Resource.Template(uriTemplate: "lanes://runs/{run}/steps/{step}", name: "step",
                           description: "One step's records (intent, close, decisions) from the journal.",
                           mimeType: "application/json"),
         Resource.Template(uriTemplate: "lanes://runs/{run}/steps/{step}/{stream}?offset={offset}", name: "step output",
                           description: "A step's whole captured output (stream stdout or stderr) from byte offset, up to 256 KiB a read (cut at a character boundary); `next` names the rest, or is null. A step record too large for one read names these URIs instead of holding the output.",
                           mimeType: "application/json"),
         Resource.Template(uriTemplate: "lanes://runs/{run}/records/{seq}?offset={offset}", name: "record body",
                           description: "One record's body text exactly as it was hashed, from byte offset, up to 256 KiB a read; `next` names the rest, or is null. A record too large for one read names this URI (body_parts) instead of holding its body.",
                           mimeType: "application/json"),
         Resource.Template(uriTemplate: "lanes://runs/{run}?after_seq={seq}", name: "run records after",
                           description: "The run's records after record seq, up to 384 KiB; `next` names the rest, or is null.",
                           mimeType: "application/json")]
    }

    /// How many of the run's most recent steps `run_status` lists unless asked for another number.
    static let recentSteps = 50

    /// `run_status`: the most recent `recent` steps, budget use, halts, stops and pending
    /// approvals, as JSON. Only the listed steps' records are read and parsed: a status of a
    /// 10,000-step run is as small and as cheap as one of 50 (it used to parse every result the
    /// run recorded, and left a warm server's heap 9 MiB larger).
    func status(recent: Int = RunViews.recentSteps) throws(MCPError) -> String {
        let journal = try open()
        let ids: [String], records: [JournalRecord], state: RunState?
        do {
            ids = try journal.stepIDs(run: run)
            records = try journal.records(run: run, steps: Array(ids.suffix(recent)))
            state = try journal.keptState(run: run)
        } catch {
            throw MCPError.internalError("journal: \(error.description)")
        }
        var o = JSONObject()
        o.add("run", .string(run))
        o.add("lane", .string(lane))
        o.add("steps_total", .int(ids.count))
        o.add("steps_omitted", .int(ids.count - min(recent, ids.count)))
        var steps: [String: (intent: Int, close: [String: Any]?)] = [:]
        var order: [String] = []
        for r in records {
            guard let step = r.step else { continue }
            if r.kind == .intent {
                if steps[step] == nil { order.append(step) }
                steps[step] = (r.seq, nil)
            } else if r.kind == .close {
                // The close body: {"intent_seq": N, "result": {…the step's result…}}.
                let body = (try? JSONSerialization.jsonObject(with: Data(r.body.utf8))) as? [String: Any]
                steps[step]?.close = body?["result"] as? [String: Any] ?? body
            }
        }
        o.add("steps", .array(order.map { id in
            var s = JSONObject()
            s.add("step", .string(id))
            let close = steps[id]?.close
            s.add("outcome", .string(close?["outcome"] as? String ?? "in_flight_or_in_doubt"))
            s.add("exit_status", (close?["exit_status"] as? Int).map { .int($0) } ?? .null)
            s.add("wall_ms", (close?["wall_ms"] as? Double).map { .double($0) } ?? .null)
            return .object(s)
        }))
        let usage = state?.usage ?? RunUsage()
        var u = JSONObject()
        u.add("steps", .int(usage.steps))
        u.add("failed_steps", .int(usage.failedSteps))
        u.add("wall_seconds", .double(usage.wallSeconds))
        u.add("cpu_seconds", .double(usage.cpuSeconds))
        u.add("output_bytes", .double(usage.outputBytes))
        o.add("budget_used", .object(u))
        let g = state?.governance ?? RunGovernance()
        // Each limit the run has (the lane's [budget], raised by `lanes resume --raise`) with what
        // it has used, so an agent can see how close it is before a halt tells it.
        let laneBudget = (try? service.lane(lane))?.budget ?? Lane.Budget()
        let now = Date().timeIntervalSince1970
        var limits = JSONObject()
        for key in Lane.Budget.keys {
            guard let limit = g.limit(key, lane: laneBudget) ?? (key == "loop_failures" ? laneBudget.loopFailures : nil) else { continue }
            var entry = JSONObject()
            entry.add("limit", .double(limit))
            entry.add("used", usage.used(key, openedAt: g.openedAt, now: now).map { .double($0) } ?? .null)
            limits.add(key, .object(entry))
        }
        o.add("budget", .object(limits))
        o.add("halted", g.halted.map { .string($0.decision.reason ?? "halted") } ?? .null)
        o.add("stopped", g.stopped.map { .string($0.decision.reason ?? "stopped") } ?? .null)
        o.add("raises", .object(g.raises.sorted { $0.key < $1.key }.reduce(into: JSONObject()) { $0.add($1.key, .double($1.value)) }))
        o.add("pending_approvals", .array(g.pending.map { r in
            var p = JSONObject()
            p.add("step", .string(r.step))
            p.add("rule", r.decision.rule.map { .string($0) } ?? .null)
            p.add("approve_with", .string("lanes approve \(run) \(r.step) --by NAME"))
            return .object(p)
        }))
        return o.rendered
    }

    /// How much of a run's journal one `resources/read` returns: past it, the rest comes from the
    /// `next` URI. A close record holds the step's captured output (a 4 MiB capture is a ~24 MiB
    /// record), so a whole long run read at once could take gigabytes of the server and of the
    /// agent's context. 384 KiB: a page escaped once more inside the JSON-RPC response still fits
    /// the 1 MiB the official Python client allows one server-sent event (Streamable HTTP).
    static let resourceBytes = 384 << 10

    /// `resources/read` of a `ResourceURI`: a page of the run's records (as many as fit in
    /// `resourceBytes`, at least one), one step's records, or a part of a step's output or of a
    /// record's body.
    func read(_ uri: String) throws(MCPError) -> ReadResource.Result {
        let resource = try ResourceURI(uri)
        let runID = resource.run
        let journal = try open()
        let text: String
        do {
            guard try journal.keptState(run: runID)?.governance.lane == lane else {
                throw MCPError.invalidParams("no run \"\(runID)\" of lane \(lane) in the journal")
            }
            switch resource {
            case let .run(_, afterSeq):
                text = try page(journal, run: runID, afterSeq: afterSeq)
            case let .step(_, step):
                let chosen = try (journal.records(run: runID, steps: [step])
                    + journal.decisions(run: runID).filter { Self.decisionStep($0) == step }).sorted { $0.seq < $1.seq }
                if chosen.isEmpty { throw MCPError.invalidParams("run \(runID) has no step \"\(step)\"") }
                text = "{\"run\":" + JSONValue.string(runID).rendered + ",\"records\":["
                    + chosen.map { Self.rendered($0, run: runID) }.joined(separator: ",") + "],\"next\":null}"
            case let .stepOutput(_, step, stream, offset):
                let records = try journal.records(run: runID, steps: [step])
                if records.isEmpty { throw MCPError.invalidParams("run \(runID) has no step \"\(step)\"") }
                text = try TextParts.output(run: runID, step: step, stream: stream, offset: offset, records: records)
            case let .recordBody(_, seq, offset):
                guard let record = try journal.records(run: runID, afterSeq: seq - 1, limit: 1).first, record.seq == seq else {
                    throw MCPError.invalidParams("run \(runID) has no record \(seq)")
                }
                text = try TextParts.body(run: runID, record: record, offset: offset)
            }
        } catch let e as MCPError {
            throw e
        } catch {
            throw MCPError.internalError("journal: \(error)")
        }
        return ReadResource.Result(contents: [.text(text, uri: uri, mimeType: "application/json")])
    }

    /// The run's records after `afterSeq`, as many as fit in `resourceBytes` (at least one, so
    /// that following `next` always gets on), and `next`.
    private func page(_ journal: SQLiteJournal, run runID: String, afterSeq: Int) throws -> String {
        var text = "{\"run\":" + JSONValue.string(runID).rendered + ",\"records\":["
        var next: String?
        var first = true, last = afterSeq
        pages: while true {
            let page = try journal.records(run: runID, afterSeq: last, limit: 64)
            for r in page {
                let item = Self.rendered(r, run: runID)
                if !first && text.utf8.count + item.utf8.count > Self.resourceBytes {
                    next = "lanes://runs/\(runID)?after_seq=\(last)"
                    break pages
                }
                text += (first ? "" : ",") + item
                first = false
                last = r.seq
            }
            if page.count < 64 { break }
        }
        return text + "],\"next\":" + (next.map { JSONValue.string($0).rendered } ?? "null") + "}"
    }

    /// One record as JSON; its body is JSON already and embedded as it was hashed. A record too
    /// large for one read (`resourceBytes`) comes with `"body": null`, `"body_complete": false`,
    /// `body_bytes`, and `body_parts`, the URI that gives its body text a part at a time (the
    /// record's hash covers that text); a close record also names its output's parts
    /// (`"output"`), which are what an agent usually wants of it.
    private static func rendered(_ r: JournalRecord, run: String) -> String {
        let head = "{\"seq\":\(r.seq),\"kind\":\"\(r.kind.rawValue)\",\"step\":\(r.step.map { JSONValue.string($0).rendered } ?? "null")"
            + ",\"at\":\(String(format: "%.6f", r.at)),\"hash\":\"\(r.hash)\""
        guard r.body.utf8.count + head.utf8.count > resourceBytes else {
            return head + ",\"body\":\(r.body)}"
        }
        var cut = JSONObject()
        cut.add("body_complete", .bool(false))
        cut.add("body_bytes", .int(r.body.utf8.count))
        cut.add("body_parts", .string(TextParts.bodyURI(run: run, seq: r.seq)))
        if r.kind == .close, let step = r.step {
            var output = JSONObject()
            for stream in TextParts.streams {
                output.add(stream, .string(TextParts.uri(run: run, step: step, stream: stream)))
            }
            cut.add("output", .object(output))
        }
        cut.add("body", .null)
        // `cut` rendered is `{…}`: its fields continue the record's.
        return head + "," + cut.rendered.dropFirst()
    }

    /// Waits until the step's approval request is answered (true) or `seconds` pass (false).
    /// Throws `CancellationError` when the call is cancelled (its client went away): a sleep
    /// that threw was once ignored, and the loop then read the journal without pause until the
    /// deadline, a CPU at 100% for up to the hour a caller may ask for.
    func waitForDecision(step: String, seconds: Double) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let journal = try? open(), let state = try? journal.keptState(run: run),
               let request = state.governance.request(step: step), request.answer != nil {
                return true
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        return false
    }

    private func open() throws(MCPError) -> SQLiteJournal {
        do { return try service.openJournal() } catch { throw MCPError.internalError("journal: \(error.description)") }
    }

    private static func decisionStep(_ r: JournalRecord) -> String? {
        guard r.kind == .decision, let d = try? JSONDecoder().decode(Decision.self, from: Data(r.body.utf8)) else { return nil }
        return d.step
    }
}
