/// A named execution lane: a profile bound to an owner and a workspace. Credentials, review
/// gates and budgets are reserved sections that later issues fill in; a lane that sets anything
/// there today is rejected rather than silently ignored.
public struct Lane: Sendable, Equatable {
    public var name: String
    public var description: String
    /// Who answers for what runs in this lane (a person or a team).
    public var owner: String
    /// The profile's name.
    public var profile: String
    /// The default workspace (absolute); `nil` means the current directory.
    public var workspace: String?
    /// Workspace-relative directories bound read-write even when the profile's workspace is
    /// read-only (for example an extraction lane's output directory). Created when missing.
    public var writable: [String]

    public init(name: String, description: String, owner: String, profile: String,
                workspace: String? = nil, writable: [String] = []) {
        self.name = name
        self.description = description
        self.owner = owner
        self.profile = profile
        self.workspace = workspace
        self.writable = writable
    }
}
