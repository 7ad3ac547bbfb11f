import Foundation
import LaneModel
import LaneRuntime
import LaneSupervisor
import Logging
import MCP

/// `lanes mcp`: one MCP server over one `StepService` (configuration, compiled policies and the
/// journal connection kept warm) for one lane and one run. Each tool call that runs something is
/// one journaled step of that run with every rule of `lanes run`; steps run concurrently, each on
/// its own thread (a step blocks its thread in the sandbox monitor; the cooperative pool is never
/// blocked). When the client goes away the steps still running are stopped cleanly (recorded
/// `stopped`) before `serve` returns.
public final class LaneMCPServer: @unchecked Sendable {
    /// What the server serves.
    public struct Options: Sendable {
        public var lane: String
        /// The run every step belongs to (a restart with the same run resumes it).
        public var run: String
        public var workspace: String?
        public var version: String
        /// Steps that run at once (`--max-steps`); further calls wait for a slot.
        public var maxSteps: Int
        /// Bytes of each output stream a tool result carries (`--reply-output`; 0: all).
        public var replyOutput: Int
        /// What the lane's steps reach over the network, as run_command describes it.
        public var network: NetworkReach
        /// The default `--reply-output` (64 KiB of each stream), and what it accepts (0: all).
        public static let defaultReplyOutput = 64 << 10
        public static let replyOutputRange = 0...(64 << 20)
        /// The default `--max-steps`: room for several agents' parallel calls, not for a flood.
        public static let defaultMaxSteps = 16
        /// What `--max-steps` accepts.
        public static let maxStepsRange = 1...1024
        public init(lane: String, run: String, workspace: String?, version: String, maxSteps: Int = Options.defaultMaxSteps,
                    replyOutput: Int = Options.defaultReplyOutput, network: NetworkReach = .none) {
            self.lane = lane
            self.run = run
            self.workspace = workspace
            self.version = version
            self.maxSteps = maxSteps
            self.replyOutput = replyOutput
            self.network = network
        }
    }

    let service: StepService
    let options: Options
    let logger: Logger
    let steps: StepThreads
    let views: RunViews
    /// `tools/list`'s answer, made once: it depends only on the options.
    let tools: [Tool]

    public init(service: StepService, options: Options, logger: Logger) {
        self.service = service
        self.options = options
        self.logger = logger
        self.steps = StepThreads(maxSteps: options.maxSteps)
        self.views = RunViews(service: service, lane: options.lane, run: options.run)
        self.tools = ToolCatalog.tools(network: options.network)
    }

    /// Serves one client on `transport` until it disconnects; then stops the steps it left
    /// running and waits until their results are recorded.
    public func serve(transport: any Transport) async throws {
        let server = await makeServer()
        try await server.start(transport: transport)
        await server.waitUntilCompleted()
        logger.info("client gone; stopping the steps still running", metadata: ["running": "\(steps.count)"])
        steps.cancelAll()
        await steps.drain()
    }

    /// An MCP server with this lane's tools and resources (one per client session; they share
    /// the step service and the running steps).
    func makeServer() async -> Server {
        let server = Server(
            name: "lanes", version: options.version, title: "Lanes sandbox (lane \(options.lane))",
            instructions: """
                Every tool call runs as one step in a fresh, isolated sandbox of the lane "\(options.lane)" and is \
                recorded in run \(options.run). Give steps a step_id to make retries safe (a completed step id \
                replays its recorded result). A result with isError true says why in `reason` and `error`.
                """,
            capabilities: .init(resources: .init(subscribe: false, listChanged: false), tools: .init(listChanged: false)))
        await server.withMethodHandler(ListTools.self) { [self] _ in ListTools.Result(tools: self.tools) }
        await server.withMethodHandler(CallTool.self) { [self] params in try await self.call(params, server: server) }
        await server.withMethodHandler(ListResources.self) { [self] _ in ListResources.Result(resources: self.views.resources()) }
        await server.withMethodHandler(ListResourceTemplates.self) { [self] _ in
            ListResourceTemplates.Result(templates: self.views.templates())
        }
        await server.withMethodHandler(ReadResource.self) { [self] params in try self.views.read(params.uri) }
        return server
    }

    /// Stops every step still running and waits for their results to be recorded (shutdown).
    func stopAll() async {
        steps.cancelAll()
        await steps.drain()
    }

    /// One `tools/call`.
    func call(_ params: CallTool.Parameters, server: Server) async throws -> CallTool.Result {
        let progress = CallProgress(token: params._meta?.progressToken, server: server)
        let peer = Server.currentHandlerContext?.httpContext?.header(PeerHeader.name)
        if let peer {
            logger.notice("tool call", metadata: ["tool": "\(params.name)", "peer": "\(peer)", "run": "\(options.run)"])
        }
        // The arguments as sent: the SDK's decoding turns strings that look like data: URLs into
        // binary data (RawToolArguments).
        let arguments = RawToolArguments.find(in: Server.currentHandlerContext?.httpContext?.body, tool: params.name)
            ?? params.arguments
        switch params.name {
        case "run_command":
            let a = try ToolArguments(tool: params.name, values: arguments,
                                      allowed: ["argv", "command", "stdin", "timeout_seconds", "step_id", "idempotent", "effect",
                                                "approval_wait_seconds"])
            let argv: [String]
            switch (try a.stringArray("argv"), try a.string("command", nonEmpty: true)) {
            case let (list?, nil): argv = list
            case let (nil, command?): argv = ["sh", "-c", command]
            case (nil, nil): throw MCPError.invalidParams("run_command: give either \"argv\" (an array of strings) or \"command\" (a string)")
            case (_?, _?): throw MCPError.invalidParams("run_command: give \"argv\" or \"command\", not both")
            }
            var call = makeCall(argv: argv, step: try a.string("step_id", nonEmpty: true))
            call.timeoutSeconds = try a.number("timeout_seconds", min: 0, exclusive: true)
            call.idempotent = try a.bool("idempotent") ?? false
            call.effect = try a.string("effect", nonEmpty: true)
            call.stdin = Array((try a.text("stdin") ?? "").utf8)
            return try await perform(call, approvalWait: try a.number("approval_wait_seconds", min: 0, exclusive: false) ?? 0,
                                     progress: progress)
        case "read_file":
            let a = try ToolArguments(tool: params.name, values: arguments, allowed: ["path", "start_line", "lines", "step_id"])
            let path = try a.requiredString("path")
            let start = try a.int("start_line", range: 1...Int(Int32.max)), count = try a.int("lines", range: 1...1_000_000)
            // The whole file stays `cat` (the intent steps recorded before ranges existed).
            let argv = start == nil && count == nil ? ["cat", "--", path]
                : ["sed", "-n", "\(start ?? 1),\(count.map { String((start ?? 1) + $0 - 1) } ?? "$")p", "--", path]
            let call = makeCall(argv: argv, step: try a.string("step_id", nonEmpty: true))
            return try await perform(call, approvalWait: 0, progress: progress)
        case "write_file":
            let a = try ToolArguments(tool: params.name, values: arguments,
                                      allowed: ["path", "content", "step_id", "approval_wait_seconds"])
            let path = try a.requiredString("path")
            guard let content = try a.text("content") else {
                throw MCPError.invalidParams("write_file: missing the required argument \"content\" (a string)")
            }
            // The content's hash is an argument the script ignores: it makes the content part of
            // the step's recorded intent, so a step id reused with other content is nondeterminism.
            var call = makeCall(argv: ["sh", "-c", "cat > \"$1\"", "write_file", path, "sha256:" + Digest.sha256(Array(content.utf8))],
                                step: try a.string("step_id", nonEmpty: true))
            call.stdin = Array(content.utf8)
            return try await perform(call, approvalWait: try a.number("approval_wait_seconds", min: 0, exclusive: false) ?? 0,
                                     progress: progress)
        case "list_files":
            let a = try ToolArguments(tool: params.name, values: arguments, allowed: ["path", "recursive", "max_depth", "step_id"])
            let path = try a.string("path", nonEmpty: true) ?? "."
            let argv = try a.bool("recursive") == true
                ? ["find", path, "-maxdepth", String(try a.int("max_depth", range: 1...64) ?? 8)]
                : ["ls", "-lA", "--", path]
            let call = makeCall(argv: argv, step: try a.string("step_id", nonEmpty: true))
            return try await perform(call, approvalWait: 0, progress: progress)
        case "run_status":
            let a = try ToolArguments(tool: params.name, values: arguments, allowed: ["steps"])
            let text = try views.status(recent: try a.int("steps", range: 1...1000) ?? RunViews.recentSteps)
            return CallTool.Result(content: [.text(text: text, annotations: nil, _meta: nil)],
                                   isError: false)
        default:
            throw MCPError.invalidParams("unknown tool \"\(params.name)\"; the tools are \(ToolCatalog.names.joined(separator: ", "))")
        }
    }

    private func makeCall(argv: [String], step: String?) -> StepCall {
        var call = StepCall(lane: options.lane, argv: argv, workspace: options.workspace, run: options.run, step: step, output: .capture)
        call.stdin = []
        call.requester = Server.currentHandlerContext?.httpContext?.header(PeerHeader.name)
        return call
    }

    /// Runs the step; when it is gated and the caller is willing to wait, waits for the decision
    /// and runs it once approved (a denial or expiry reports 79).
    private func perform(_ call: StepCall, approvalWait: Double, progress: CallProgress) async throws -> CallTool.Result {
        var report = try await steps.run(call, service: service, progress: progress)
        if report.result.reason == .awaitingApproval, approvalWait > 0, let step = report.step, let run = report.run {
            let views = views
            let decided = try await progress.during(immediately: true, {
                "waiting \($0) s for a human's approval: lanes approve \(run) \(step) --by NAME"
            }) { try await views.waitForDecision(step: step, seconds: approvalWait) }
            if decided {
                var again = call
                again.step = step
                report = try await steps.run(again, service: service, progress: progress)
            }
        }
        return Self.toolResult(report, replyOutput: options.replyOutput)
    }

    /// The step's report as a tool result: the JSON of `lanes run --json` as text; isError unless
    /// the command exited 0. No `structuredContent`: the SDK (0.12.1) re-decodes a result's
    /// strings and rewrites each one that parses as a data: URL, so a structured copy could
    /// differ from what the command printed (stdout "data:,hi" came back as
    /// "data:text/plain;base64,aGk="); it also cost about 1 ms of a warm step (docs/mcp.md).
    /// Each output stream is cut to `replyOutput` bytes (`ReplyOutput`), with a note saying so.
    static func toolResult(_ report: StepReport, replyOutput: Int) -> CallTool.Result {
        let (report, cut) = ReplyOutput.fit(report, limit: replyOutput)
        let json = report.json()
        var content: [Tool.Content] = [.text(text: json, annotations: nil, _meta: nil)]
        if let cut { content.append(.text(text: cut, annotations: nil, _meta: nil)) }
        if report.result.reason == .awaitingApproval, let run = report.run, let step = report.step {
            content.append(.text(text: "This step awaits a human's approval: `lanes approve \(run) \(step) --by NAME` (or `lanes deny \(run) \(step) --by NAME`). Then call again with step_id \"\(step)\" and the same arguments, or pass approval_wait_seconds to wait for the decision.",
                                 annotations: nil, _meta: nil))
        }
        let failed = !(report.result.outcome == .exited && report.exitStatus == 0)
        return CallTool.Result(content: content, isError: failed)
    }
}
