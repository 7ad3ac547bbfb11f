import MCP

/// A `lanes://runs/…` resource URI, parsed (`RunViews.read` serves each).
enum ResourceURI: Equatable {
    /// `lanes://runs/RUN[?after_seq=N]`: the run's records after seq N, a page at a time.
    case run(String, afterSeq: Int)
    /// `lanes://runs/RUN/steps/STEP`: one step's records.
    case step(run: String, step: String)
    /// `lanes://runs/RUN/steps/STEP/stdout[?offset=N]` (or stderr): the step's captured stream.
    case stepOutput(run: String, step: String, stream: String, offset: Int)
    /// `lanes://runs/RUN/records/SEQ[?offset=N]`: one record's body text, as it was hashed.
    case recordBody(run: String, seq: Int, offset: Int)

    static let usage = "expected lanes://runs/RUN, lanes://runs/RUN?after_seq=N, lanes://runs/RUN/steps/STEP, "
        + "lanes://runs/RUN/steps/STEP/stdout (or /stderr) or lanes://runs/RUN/records/SEQ, these two with ?offset=N"

    init(_ uri: String) throws(MCPError) {
        let prefix = "lanes://runs/"
        func bad(_ detail: String = "") -> MCPError {
            MCPError.invalidParams("unknown resource \"\(uri)\"; \(Self.usage)\(detail)")
        }
        guard uri.hasPrefix(prefix) else { throw bad() }
        let pathAndQuery = uri.dropFirst(prefix.count).split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let parts = pathAndQuery[0].split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard let run = parts.first, !run.isEmpty else { throw bad() }
        // A number from the query: `name=N`, N 0 or more; 0 without a query.
        func number(_ name: String) throws(MCPError) -> Int {
            guard pathAndQuery.count == 2 else { return 0 }
            let query = pathAndQuery[1]
            guard query.hasPrefix(name + "="), let n = Int(query.dropFirst(name.count + 1)), n >= 0 else {
                throw bad(" (\(name)=N, N 0 or more)")
            }
            return n
        }
        switch parts.count {
        case 1:
            self = .run(run, afterSeq: try number("after_seq"))
        case 3 where parts[1] == "steps" && !parts[2].isEmpty && pathAndQuery.count == 1:
            self = .step(run: run, step: parts[2])
        case 3 where parts[1] == "records":
            guard let seq = Int(parts[2]), seq > 0 else { throw bad(" (SEQ a record's seq, 1 or more)") }
            self = .recordBody(run: run, seq: seq, offset: try number("offset"))
        case 4 where parts[1] == "steps" && !parts[2].isEmpty && TextParts.streams.contains(parts[3]):
            self = .stepOutput(run: run, step: parts[2], stream: parts[3], offset: try number("offset"))
        default:
            throw bad()
        }
    }

    var run: String {
        switch self {
        case let .run(run, _), let .step(run, _), let .stepOutput(run, _, _, _), let .recordBody(run, _, _): run
        }
    }
}
