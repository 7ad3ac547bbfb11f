import LaneModel

/// One step to run: a lane, its profile, the command and where.
public struct StepRequest: Sendable {
    public var lane: Lane
    public var profile: Profile
    /// The command and its arguments.
    public var argv: [String]
    /// The workspace: an absolute, symlink-free path to a directory.
    public var workspace: String
    /// Overrides the profile's wall-clock limit (seconds).
    public var timeoutSeconds: Double?
    /// Capture output for a JSON result instead of relaying it.
    public var captureOutput: Bool
    /// Host directories that must never be visible in the sandbox, even when they lie inside the
    /// workspace (the config directory, the state directory, the directory of the binaries).
    public var hiddenPaths: [String]
    /// The lane's credentials with their values, resolved by the caller. Env credentials join
    /// the environment; file credentials appear under `Lane.Credential.directory`; every value
    /// is redacted from the captured and relayed output.
    public var credentials: [CredentialValue]
    /// Where this step's change set lives (filesystem.commit = auto or review); set by the
    /// caller once the journal gave the step its id.
    public var changeStaging: ChangeStaging?
    /// The step's standard input: nil forwards this process's stdin (when it is a pipe or a file);
    /// bytes are written to the step's stdin and then closed, and this process's stdin is never
    /// read (a server whose stdin is its protocol stream passes `[]`).
    public var stdin: [UInt8]?
    /// Stops the step from another thread (recorded `stopped`, like SIGTERM to `lanes run`).
    public var cancellation: StepCancellation?

    public init(lane: Lane, profile: Profile, argv: [String], workspace: String,
                timeoutSeconds: Double? = nil, captureOutput: Bool = false, hiddenPaths: [String] = [],
                credentials: [CredentialValue] = []) {
        self.lane = lane
        self.profile = profile
        self.argv = argv
        self.workspace = workspace
        self.timeoutSeconds = timeoutSeconds
        self.captureOutput = captureOutput
        self.hiddenPaths = hiddenPaths
        self.credentials = credentials
    }

    /// The redactor for this step's output.
    public var redactor: Redactor { Redactor(secrets: credentials.map { ($0.name, $0.value) }) }

    /// The deadline in force.
    public var wallSeconds: Double { timeoutSeconds ?? profile.limits.wallSeconds }
}

/// A credential with its value, ready for the sandbox. Never logged, never in argv.
public struct CredentialValue: Sendable {
    public var name: String
    public var delivery: Lane.Credential.Delivery
    public var value: [UInt8]
    public init(name: String, delivery: Lane.Credential.Delivery, value: [UInt8]) {
        self.name = name
        self.delivery = delivery
        self.value = value
    }
}
