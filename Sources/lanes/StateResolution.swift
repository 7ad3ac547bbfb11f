import Glibc
import LaneConfig
import LaneRuntime

/// The host side of `StateLocation`: the facts it decides on, the notice it asks for, and the
/// creation of a directory under a shared parent (`/var/tmp`) with its ownership re-checked.
enum StateResolution {
    /// The decision for this process without `--state` (computed once; the notice is printed
    /// once). A refusal exits 125 naming the stage: nothing can be journaled anywhere safe.
    static let fallback: String = {
        var env: [String: String] = [:]
        for name in ["LANES_STATE", "XDG_STATE_HOME", "HOME"] { env[name] = Paths.environment(name) }
        switch StateLocation.resolve(explicit: nil, host: host(env)) {
        case let .failure(error):
            printError("lanes: state: \(error.message)")
            exit(125)
        case let .success(choice):
            if choice.mustVerifyOwnership, let problem = createPrivate(choice.path) {
                printError("lanes: state: \(problem)")
                exit(125)
            }
            if let notice = choice.notice { printError(notice) }
            return choice.path
        }
    }()

    /// `--state DIR` when given, else `fallback`.
    static func resolve(explicit: String?) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        return fallback
    }

    static func host(_ env: [String: String]) -> StateLocation.Host {
        StateLocation.Host(environment: env, uid: getuid(), facts: { path in
            var st = stat()
            guard lstat(path, &st) == 0 else { return nil }
            return StateLocation.PathFacts(isDirectory: (st.st_mode & S_IFMT) == S_IFDIR, owner: st.st_uid, mode: st.st_mode & 0o7777)
        }, writable: { access($0, W_OK | X_OK) == 0 })
    }

    /// mkdir 0700 (an existing one is fine), then lstat: a directory of ours that nobody else
    /// can write, or the reason it is not (another user may have created it first).
    static func createPrivate(_ path: String) -> String? {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            return "cannot create \(path): \(String(cString: strerror(errno)))"
        }
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return "\(path) is not a directory" }
        guard st.st_uid == getuid() else { return "\(path) belongs to uid \(st.st_uid), not to this user; refusing to keep the journal there" }
        guard st.st_mode & 0o022 == 0 else { return "\(path) is writable by others; refusing to keep the journal there" }
        return nil
    }
}
