import Glibc
import LaneRuntime
import Logging

/// The CLI's logging: swift-log to stderr, one line per event, at the level `LANES_LOG` names
/// (`debug`, `info`, `warning`; default `warning`). Libraries take the logger; they never log a
/// credential value (names only).
enum Log {
    static let logger: Logger = {
        let level = Paths.environment("LANES_LOG").flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "lanes")
        logger.logLevel = level
        return logger
    }()
}
