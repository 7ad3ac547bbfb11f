import Glibc

/// The host identity a step's processes run as, and whether its workspace needs an id-mapped
/// mount. Unprivileged `lanes` maps the sandbox to its caller, as always. `lanes` run as root
/// never lends host root to a step:
/// - a workspace owned by a user runs as that user (uid; gid: the workspace's group, or the
///   user's primary group when that group is root's), so
///   `sudo lanes run` in a checkout leaves files owned by the checkout's owner;
/// - a root-owned workspace runs as a dedicated unprivileged identity (the first id of the
///   `lanes` entry in /etc/subuid and /etc/subgid, else `dedicatedDefault`), and the workspace
///   is id-mapped so that this identity acts as its owner: files it creates belong to root on
///   disk, yet no process of the step is root on the host.
/// docs/security.md ("Never host root") explains the choice.
public struct StepIdentity: Sendable, Equatable {
    /// The host uid and gid uid 0 of the sandbox's outer user namespace maps to.
    public var uid: UInt32
    public var gid: UInt32
    /// `lanes` runs as root: workspace binds are opened by the supervisor (trees passed to PID 1).
    public var rootful: Bool
    /// The workspace's owner differs from `uid`: its binds are id-mapped through the sandbox's
    /// user namespace.
    public var idmapWorkspace: Bool

    /// Used when /etc/subuid names no range for `lanes`: 0x6C616E00 ("lan\0"), far above the
    /// ids Debian and Fedora hand to users and to subordinate ranges.
    public static let dedicatedDefault: UInt32 = 0x6C61_6E00

    /// The identity for a step in `workspace`, run by this process.
    public static func forStep(workspace: String, root: Bool) -> StepIdentity {
        guard root else { return StepIdentity(uid: geteuid(), gid: getegid(), rootful: false, idmapWorkspace: false) }
        var st = stat()
        let owner: (UInt32, UInt32) = stat(workspace, &st) == 0 ? (st.st_uid, st.st_gid) : (0, 0)
        if owner.0 != 0 {
            // A root group on the workspace: the owner's primary group, never gid 0.
            let primary = getpwuid(owner.0).map { $0.pointee.pw_gid } ?? 0
            let gid = owner.1 != 0 ? owner.1 : primary != 0 ? primary : subordinateStart("/etc/subgid") ?? dedicatedDefault
            return StepIdentity(uid: owner.0, gid: gid, rootful: true, idmapWorkspace: false)
        }
        let uid = subordinateStart("/etc/subuid") ?? dedicatedDefault
        let gid = subordinateStart("/etc/subgid") ?? dedicatedDefault
        return StepIdentity(uid: uid, gid: gid, rootful: true, idmapWorkspace: true)
    }

    /// The start of the `lanes:START:COUNT` line of a subordinate id file, when there is one
    /// with a non-zero start.
    static func subordinateStart(_ path: String) -> UInt32? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), f) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let parts = text.split(separator: ":")
            guard parts.count >= 2, parts[0] == "lanes" else { continue }
            if let start = UInt32(parts[1].trimmingCharacters), start != 0 { return start }
        }
        return nil
    }
}

private extension Substring {
    var trimmingCharacters: String { String(filter { !$0.isWhitespace }) }
}
