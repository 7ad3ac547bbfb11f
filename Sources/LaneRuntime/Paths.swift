import Glibc
import LaneConfig
import LaneSyscall

/// Where `lanes` itself lives, and what follows from that.
public enum Paths {
    /// The resolved path of the running executable.
    public static let executable: String = {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        return n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "/usr/local/bin/lanes"
    }()

    public static var executableDirectory: String { parent(executable) }

    /// The helper: `LANES_INIT`, else `lane-init` next to `lanes`.
    public static var initHelper: String {
        if let env = environment("LANES_INIT"), !env.isEmpty { return env }
        return executableDirectory + "/lane-init"
    }

    /// The profiles and lanes installed with the package: `../share/lanes` next to the binary,
    /// or the source tree the binary was built in.
    public static var installedConfig: String? {
        let share = parent(executableDirectory) + "/share/lanes"
        if isDirectory(share + "/Profiles") { return share }
        var dir = executableDirectory
        while dir != "/" {
            if isDirectory(dir + "/Profiles") && isDirectory(dir + "/Lanes") && access(dir + "/Package.swift", F_OK) == 0 { return dir }
            dir = parent(dir)
        }
        return nil
    }

    public static var currentDirectory: String { currentWorkingDirectory() ?? "/" }

    public static func environment(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        return String(cString: v)
    }

    public static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// realpath(3), or nil with errno set.
    public static func resolve(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    public static func locateConfig(_ explicit: String?) -> ConfigStore? {
        ConfigStore.locate(explicit: explicit, environment: environment, cwd: currentDirectory, installed: installedConfig)
    }
}
