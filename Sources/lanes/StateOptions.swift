import ArgumentParser
import Glibc
import LaneJournal
import LaneRuntime
import LaneState

/// The state directory option every journal and secret command shares.
struct StateOptions: ParsableArguments {
    @Option(name: .customLong("state"), help: ArgumentHelp("The state directory: journal and secrets (default: LANES_STATE, $XDG_STATE_HOME/lanes, /var/lib/lanes for root, ~/.local/state/lanes, /run/user/UID/lanes, /var/tmp/lanes-UID).", valueName: "DIR"))
    var state: String?

    /// The directory in use (`StateLocation`); a one-line notice on stderr when a fallback is used.
    var resolved: String { StateResolution.resolve(explicit: state) }

    func open() throws -> StateDirectory {
        do { return try StateDirectory(path: resolved) } catch {
            printError("lanes: \(error.message)")
            throw ExitCode(JournalExitStatus.journalError)
        }
    }

    func journal() throws -> SQLiteJournal {
        do { return try open().openJournal() } catch let error as JournalError {
            printError("lanes: \(error.description)")
            throw ExitCode(JournalExitStatus.journalError)
        }
    }
}

/// Writes all bytes to an fd.
func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        offset += n
    }
}
