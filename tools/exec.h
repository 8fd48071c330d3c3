// chronicle tools — running a command on a batch of records (chronicle-tail --exec): `sh -c
// CMD` with the batch on its standard input and variables added to its environment, waited
// for. The command's standard output and error are ours; its exit status is the verdict.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chronicle::cli {

struct CommandResult {
    enum class Kind {
        exited,       // it exited; `status` is its exit status (0: success)
        killed,       // a signal ended it; `status` is the signal
        not_started,  // it could not be started; `error` is the errno
        interrupted,  // a termination signal reached us (cli::terminated()): it was told to stop
    };
    Kind kind = Kind::not_started;
    int status = 0;
    int error = 0;
    // Whether it read all of its input before it exited (a command may succeed without:
    // `true`, `head -1`).
    bool read_all = false;

    [[nodiscard]] bool success() const noexcept { return kind == Kind::exited && status == 0; }
    // "exit status 3", "killed by signal 9 (Killed)", "cannot run /bin/sh: …".
    [[nodiscard]] std::string describe() const;
};

// Runs `/bin/sh -c command` with `input` on its standard input (a pipe, closed once all is
// written or once the command has exited) and `env` ("NAME=value", replacing variables of
// the same name) added to our environment, and waits for it to exit. The command starts
// with no signal blocked and SIGPIPE, SIGINT, SIGTERM and SIGHUP at their defaults (the
// tools block or ignore them). A termination signal to us while it runs
// (cli::install_termination_handlers()) sends it SIGTERM, and SIGKILL if it has not
// exited 10 s later; the result is then `interrupted`, whatever it exited with.
CommandResult run_command(const std::string& command, std::string_view input,
                          const std::vector<std::pair<std::string, std::string>>& env);

}  // namespace chronicle::cli
