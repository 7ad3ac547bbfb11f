import ArgumentParser
import Glibc
import LaneSyscall
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
    try? FileDescriptor(rawValue: fd).writeAll(bytes)
}
