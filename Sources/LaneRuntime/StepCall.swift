import LaneModel
import LaneSupervisor

/// One request for a step, as any front door (the CLI, `lanes mcp`) makes it.
public struct StepCall: Sendable {
    /// How the step's output reaches the caller.
    public enum Output: Sendable {
        /// Relayed to this process's stdout and stderr as it is written (and captured for the journal).
        case relay
        /// Only captured, into the result.
        case capture
    }

    public var lane: String
    /// The command and its arguments (never empty: a front door refuses that as a usage error).
    public var argv: [String]
    /// The workspace (default: the lane's, else `ServiceOptions.currentDirectory`).
    public var workspace: String?
    /// The run (nil: a new run); the step id within it (nil: the run's next ordinal).
    public var run: String?
    public var step: String?
    /// Overrides the profile's wall-clock deadline (seconds).
    public var timeoutSeconds: Double?
    /// Running a step left in doubt again is harmless (`--idempotent`).
    public var idempotent: Bool
    /// The effect the caller declares; the lane's `[review] effects` gate it.
    public var effect: String?
    public var output: Output
    /// Run even in a workspace that exposes the host (`HostWorkspace`; `--allow-host-workspace`).
    /// Recorded in the intent as the limit `allow_host_workspace`.
    public var allowHostWorkspace: Bool
    /// The step's stdin: nil forwards this process's (the CLI); bytes are written and then closed
    /// (a server never lets a step read its protocol stream).
    public var stdin: [UInt8]?
    /// Lets another thread stop the running step (recorded `stopped`).
    public var cancellation: StepCancellation?
    /// Who asked (a socket peer), recorded in the step's result.
    public var requester: String?

    public init(lane: String, argv: [String], workspace: String? = nil, run: String? = nil, step: String? = nil,
                timeoutSeconds: Double? = nil, idempotent: Bool = false, effect: String? = nil, output: Output = .capture,
                allowHostWorkspace: Bool = false) {
        self.lane = lane
        self.argv = argv
        self.workspace = workspace
        self.run = run
        self.step = step
        self.timeoutSeconds = timeoutSeconds
        self.idempotent = idempotent
        self.effect = effect
        self.output = output
        self.allowHostWorkspace = allowHostWorkspace
    }
}

/// What became of a `StepCall`: one result, whether it ran, was replayed or was refused.
public struct StepReport: Sendable {
    /// The run, or nil when nothing was recorded (the step failed before the journal and no run
    /// was named).
    public var run: String?
    public var step: String?
    /// The result was read from the journal; nothing ran.
    public var replayed: Bool
    /// The step was in doubt and ran again because the lane or the call allows it.
    public var retried: Bool
    public var result: StepResult
    /// The result's JSON exactly as reported: for a replay, the text the live step reported.
    public var resultJSON: String

    public init(run: String?, step: String?, replayed: Bool, retried: Bool, result: StepResult, resultJSON: String) {
        self.run = run
        self.step = step
        self.replayed = replayed
        self.retried = retried
        self.result = result
        self.resultJSON = resultJSON
    }

    /// The exit status `lanes run` returns for it.
    public var exitStatus: Int32 { result.exitStatus }

    /// One JSON object: `run`, `step` and `replayed`, then every field of the result
    /// (docs/step-result.schema.json).
    public func json() -> String {
        var head = JSONObject()
        head.add("run", run.map { .string($0) } ?? .null)
        head.add("step", step.map { .string($0) } ?? .null)
        head.add("replayed", .bool(replayed))
        return String(head.rendered.dropLast()) + "," + String(resultJSON.dropFirst())
    }
}
