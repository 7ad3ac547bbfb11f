import LaneModel
import LanePlan

/// A parsed lane and its profile as bytes, for the compiled configuration cache
/// (`CompiledConfigFile`). Every stored property of both is written, in declaration order.
/// `CompiledConfigTests` round-trips a lane and a profile whose every field is away from its
/// default, and fails when one is not: a field added to the model but not here fails it.
enum ConfigCodec {
    static func encode(_ lane: Lane, _ profile: Profile, into w: inout ByteWriter) {
        w.lane(lane)
        w.profile(profile)
    }

    static func decode(_ r: inout ByteReader) throws(PlanDecodingError) -> (Lane, Profile) {
        let lane = try r.lane()
        return (lane, try r.profile())
    }
}

extension ByteWriter {
    mutating func bool(_ v: Bool) { u32(v ? 1 : 0) }
    mutating func double(_ v: Double) { u64(v.bitPattern) }
    mutating func optionalString(_ v: String?) {
        bool(v != nil)
        if let v { string(v) }
    }
    mutating func optionalU64(_ v: UInt64?) {
        bool(v != nil)
        if let v { u64(v) }
    }
    mutating func optionalDouble(_ v: Double?) {
        bool(v != nil)
        if let v { double(v) }
    }
    /// Sorted by key: the same dictionary is always the same bytes.
    mutating func stringMap(_ map: [String: String]) {
        u32(UInt32(map.count))
        for key in map.keys.sorted() { string(key); string(map[key]!) }
    }
    mutating func doubleMap(_ map: [String: Double]) {
        u32(UInt32(map.count))
        for key in map.keys.sorted() { string(key); double(map[key]!) }
    }
    /// A rule is its text: parsing it again gives the same rule.
    mutating func rules(_ rules: [EgressRule]) { strings(rules.map(\.text)) }

    mutating func lane(_ l: Lane) {
        string(l.name); string(l.description); string(l.owner); string(l.profile)
        optionalString(l.workspace)
        strings(l.writable)
        string(l.retry.rawValue)
        optionalString(l.socketGroup)
        u32(UInt32(l.credentials.count))
        for c in l.credentials {
            string(c.name)
            // The source's text form (`secret:NAME`, `env:NAME`, `file:PATH`) parses back to it.
            string(c.source.description)
            string(c.delivery.rawValue)
        }
        strings(l.review.commands); strings(l.review.effects); strings(l.review.credentials)
        bool(l.review.inDoubt); double(l.review.timeoutSeconds)
        doubleMap(l.budget.limits)
        stringMap(l.unprotected)
        strings(l.haltOn)
        strings(l.writableDirect)
        u64(l.maxUndoBytes)
        rules(l.networkAllow)
    }

    mutating func profile(_ p: Profile) {
        string(p.name); string(p.description)
        let fs = p.filesystem
        string(fs.workspace.rawValue); strings(fs.readOnly); strings(fs.readWrite)
        u32(UInt32(fs.tmpfs.count))
        for t in fs.tmpfs { string(t.path); u64(t.sizeBytes) }
        string(fs.commit.rawValue); strings(fs.protected)
        let n = p.network
        string(n.mode.rawValue); rules(n.allow); rules(n.deny); u64(UInt64(bitPattern: Int64(n.maxConnections)))
        optionalU64(n.maxBytes)
        string(p.seccomp.defaultAction.rawValue); strings(p.seccomp.allow); strings(p.seccomp.deny)
        let l = p.limits
        double(l.wallSeconds); u64(l.cpuSeconds); u64(l.openFiles); u64(l.fileSizeBytes); u64(l.processes)
        u64(l.outputBytes); double(l.killGraceSeconds)
        optionalU64(l.memoryBytes); optionalU64(l.pids); optionalDouble(l.cpuFraction)
        strings(l.optional)
        stringMap(p.environment)
    }
}

extension ByteReader {
    mutating func bool() throws(PlanDecodingError) -> Bool {
        let v = try u32()
        try require(v <= 1)
        return v == 1
    }
    mutating func double() throws(PlanDecodingError) -> Double { Double(bitPattern: try u64()) }
    mutating func optionalString() throws(PlanDecodingError) -> String? { try bool() ? try string() : nil }
    mutating func optionalU64() throws(PlanDecodingError) -> UInt64? { try bool() ? try u64() : nil }
    mutating func optionalDouble() throws(PlanDecodingError) -> Double? { try bool() ? try double() : nil }
    mutating func stringMap() throws(PlanDecodingError) -> [String: String] {
        var map: [String: String] = [:]
        for _ in 0..<(try count()) {
            let key = try string()
            map[key] = try string()
        }
        return map
    }
    mutating func doubleMap() throws(PlanDecodingError) -> [String: Double] {
        var map: [String: Double] = [:]
        for _ in 0..<(try count()) {
            let key = try string()
            map[key] = try double()
        }
        return map
    }
    mutating func rules() throws(PlanDecodingError) -> [EgressRule] {
        var rules: [EgressRule] = []
        for text in try strings() {
            guard case let .success(rule) = EgressRule.parse(text) else { throw failure() }
            rules.append(rule)
        }
        return rules
    }
    /// A raw value of `T`, or a decoding error.
    mutating func raw<T: RawRepresentable>(_: T.Type) throws(PlanDecodingError) -> T where T.RawValue == String {
        guard let v = T(rawValue: try string()) else { throw failure() }
        return v
    }

    mutating func lane() throws(PlanDecodingError) -> Lane {
        let name = try string(), description = try string(), owner = try string(), profile = try string()
        let workspace = try optionalString(), writable = try strings(), retry = try raw(Lane.Retry.self)
        var lane = Lane(name: name, description: description, owner: owner, profile: profile,
                        workspace: workspace, writable: writable, retry: retry)
        lane.socketGroup = try optionalString()
        for _ in 0..<(try count()) {
            let name = try string()
            guard let source = Lane.Credential.Source.parse(try string()) else { throw failure() }
            lane.credentials.append(Lane.Credential(name: name, source: source, delivery: try raw(Lane.Credential.Delivery.self)))
        }
        let commands = try strings(), effects = try strings(), credentials = try strings()
        lane.review = Lane.Review(commands: commands, effects: effects, credentials: credentials,
                                  inDoubt: try bool(), timeoutSeconds: try double())
        lane.budget = Lane.Budget(limits: try doubleMap())
        lane.unprotected = try stringMap()
        lane.haltOn = try strings()
        lane.writableDirect = try strings()
        lane.maxUndoBytes = try u64()
        lane.networkAllow = try rules()
        return lane
    }

    mutating func profile() throws(PlanDecodingError) -> Profile {
        let name = try string(), description = try string()
        var fs = Profile.Filesystem(workspace: try raw(Profile.Filesystem.Access.self), readOnly: try strings(),
                                    readWrite: try strings(), tmpfs: [])
        for _ in 0..<(try count()) { fs.tmpfs.append(Profile.Tmpfs(path: try string(), sizeBytes: try u64())) }
        fs.commit = try raw(CommitMode.self)
        fs.protected = try strings()
        let mode = try raw(Profile.Network.Mode.self), allow = try rules(), deny = try rules()
        let connections = Int64(bitPattern: try u64())
        let network = Profile.Network(mode: mode, allow: allow, deny: deny, maxConnections: Int(connections),
                                      maxBytes: try optionalU64())
        let seccomp = Profile.Seccomp(defaultAction: try raw(Profile.Seccomp.DefaultAction.self),
                                      allow: try strings(), deny: try strings())
        let limits = Profile.Limits(
            wallSeconds: try double(), cpuSeconds: try u64(), openFiles: try u64(), fileSizeBytes: try u64(),
            processes: try u64(), outputBytes: try u64(), killGraceSeconds: try double(),
            memoryBytes: try optionalU64(), pids: try optionalU64(), cpuFraction: try optionalDouble(),
            optional: try strings())
        return Profile(name: name, description: description, filesystem: fs, network: network, seccomp: seccomp,
                       limits: limits, environment: try stringMap())
    }
}
