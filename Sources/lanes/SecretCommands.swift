import ArgumentParser
import Foundation
import LaneJournal
import LaneModel
import LaneState

struct SecretCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secret",
        abstract: "Manage the secrets lanes grant their steps as credentials.",
        discussion: """
            Secrets live in the state directory (secrets/, mode 0700; one file per secret, 0600).
            A lane grants one to its steps by name:
              [credentials]
              GITHUB_TOKEN = { from = "secret:github-ro", as = "env" }
            Values are read from stdin, never from the command line, and never printed.
            """,
        subcommands: [Set.self, List.self, Remove.self])

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set", abstract: "Store a secret; the value is read from stdin (one trailing newline is dropped).")
        @OptionGroup var stateOptions: StateOptions
        @Argument(help: "The secret's name (A-Z a-z 0-9 . _ -).") var name: String

        func run() throws {
            let store = SecretStore(state: try stateOptions.open())
            var value = Array(FileHandle.standardInput.readDataToEndOfFile())
            if value.last == UInt8(ascii: "\n") { value.removeLast() }
            if value.last == UInt8(ascii: "\r") { value.removeLast() }
            guard !value.isEmpty else {
                printError("lanes secret set: empty value on stdin; nothing stored")
                throw ExitCode(ExitStatus.usage)
            }
            do { try store.set(name, value: value) } catch {
                printError("lanes secret set: \(error.message)")
                throw ExitCode(1)
            }
            printError("lanes: secret \(name) set")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List secret names and when they were set (never values).")
        @OptionGroup var stateOptions: StateOptions
        @Flag(help: "JSON lines.") var json = false

        func run() throws {
            let entries = try SecretStore(state: try stateOptions.open()).list()
            if json {
                for e in entries {
                    var o = JSONObject()
                    o.add("name", .string(e.name))
                    o.add("set_at", .string(isoTime(e.setAt)))
                    printOut(o.rendered + "\n")
                }
            } else {
                printOut(table(["NAME", "SET"], entries.map { [$0.name, isoTime($0.setAt)] }))
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a secret.")
        @OptionGroup var stateOptions: StateOptions
        @Argument var name: String

        func run() throws {
            let removed: Bool
            let store = SecretStore(state: try stateOptions.open())
            do { removed = try store.remove(name) } catch {
                printError("lanes secret rm: \(error.message)")
                throw ExitCode(1)
            }
            if !removed {
                printError("lanes secret rm: no secret \(name)")
                throw ExitCode(1)
            }
        }
    }
}

/// An aligned table with a header row.
func table(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    var widths = [Int](repeating: 0, count: header.count)
    for row in all { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
    return all.map { row in
        row.enumerated().map { i, cell in
            i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
        }.joined(separator: "  ")
    }.joined(separator: "\n") + "\n"
}

/// UTC ISO-8601 with milliseconds.
func isoTime(_ t: Double) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f.string(from: Date(timeIntervalSince1970: t))
}
