import ArgumentParser
import Foundation

/// The arguments with each negative number that follows a long option joined to it (`--rate -5` → `--rate=-5`):
/// ArgumentParser takes `-5` for a flag and said "Missing value for '--rate <rate>'", where the value's own check
/// says what is wrong with it.
func joiningNegativeValues(_ args: [String]) -> [String] {
    var out: [String] = []
    for a in args {
        if let last = out.last, last.hasPrefix("--"), !last.contains("="), a.count > 1, a.hasPrefix("-"),
            a.dropFirst().first.map({ $0.isNumber || $0 == "." }) == true
        {
            out[out.count - 1] = last + "=" + a
        } else {
            out.append(a)
        }
    }
    return out
}

// Errors a user can cause print one line and exit 64 (bad flags, values or scenario files); a run that fails at
// run time exits 1; help and --version exit 0. No stack traces for user errors.
do {
    var command = try Quorumbench.parseAsRoot(joiningNegativeValues(Array(CommandLine.arguments.dropFirst())))
    do {
        try command.run()
    } catch let e as UsageError {
        FileHandle.standardError.write("quorumbench: \(e.description)\n")
        exit(64)
    }
} catch let e as UsageError {
    FileHandle.standardError.write("quorumbench: \(e.description)\n")
    exit(64)
} catch {
    let code = Quorumbench.exitCode(for: error)
    if code == .success {
        Quorumbench.exit(withError: error)
    }
    if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }
    let message = Quorumbench.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
    FileHandle.standardError.write("quorumbench: \(message.replacingOccurrences(of: "Error: ", with: ""))\n")
    exit(code == .validationFailure || code.rawValue == 64 ? 64 : code.rawValue)
}
