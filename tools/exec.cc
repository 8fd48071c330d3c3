// chronicle tools — running a command on a batch of records (exec.h).
#include "exec.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>

#include "cli.h"

extern char** environ;

namespace chronicle::cli {

namespace {

// A slice of waiting where no pidfd tells when the command exits (kernels before 5.3).
constexpr int kSliceMs = 10;
// How long a command told to stop (SIGTERM) may take before it is killed.
constexpr auto kStopGrace = std::chrono::seconds(10);

class Fd {
  public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    [[nodiscard]] int get() const noexcept { return fd_; }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

  private:
    int fd_;
};

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

// Our environment with `env` added; a variable of the same name is replaced.
std::vector<std::string> environment(const std::vector<std::pair<std::string, std::string>>& env) {
    std::vector<std::string> out;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        const std::string_view var(*e);
        const bool replaced = std::any_of(env.begin(), env.end(), [&](const auto& kv) {
            return var.size() > kv.first.size() && var.substr(0, kv.first.size()) == kv.first &&
                   var[kv.first.size()] == '=';
        });
        if (!replaced) out.emplace_back(var);
    }
    for (const auto& [k, v] : env) out.push_back(k + "=" + v);
    return out;
}

// Whether the child has exited: its pidfd is readable, or (without one) waitpid says so.
// Reaps it in the second case, storing the wait status.
bool child_exited(pid_t pid, int pidfd, short revents, int& wstatus, bool& reaped) {
    if (pidfd >= 0) return (revents & POLLIN) != 0;
    const pid_t r = ::waitpid(pid, &wstatus, WNOHANG);
    if (r == pid) reaped = true;
    return reaped;
}

}  // namespace

std::string CommandResult::describe() const {
    switch (kind) {
        case Kind::exited:
            return "exit status " + std::to_string(status);
        case Kind::killed:
            return "killed by signal " + std::to_string(status) + " (" + ::strsignal(status) + ")";
        case Kind::not_started:
            return std::string("cannot run /bin/sh: ") + std::strerror(error);
        case Kind::interrupted:
            return "stopped by a termination signal";
    }
    return "?";
}

CommandResult run_command(const std::string& command, std::string_view input,
                          const std::vector<std::pair<std::string, std::string>>& env) {
    CommandResult res;
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
        res.error = errno;
        return res;
    }
    Fd rd(p[0]), wr(p[1]);
    // Ours never blocks: a command that does not read must not stop us seeing it exit.
    ::fcntl(wr.get(), F_SETFL, ::fcntl(wr.get(), F_GETFL) | O_NONBLOCK);

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    // dup2 clears close-on-exec on 0; both pipe ends close at exec.
    posix_spawn_file_actions_adddup2(&fa, rd.get(), 0);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&defaults, s);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    std::vector<std::string> vars = environment(env);
    std::vector<char*> envp;
    envp.reserve(vars.size() + 1);
    for (auto& v : vars) envp.push_back(v.data());
    envp.push_back(nullptr);
    std::string sh = "sh", dash_c = "-c", cmd = command;
    char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};

    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        res.error = rc;
        return res;
    }
    rd.reset();
    Fd pidfd(open_pidfd(pid));

    int wstatus = 0;
    bool reaped = false;
    bool exited = false;
    size_t off = 0;
    // Feeds the input, then waits for the exit; a termination signal ends both.
    while (!exited && terminated() == 0) {
        pollfd fds[2] = {{pidfd.get(), POLLIN, 0}, {wr.get(), POLLOUT, 0}};
        const bool feeding = wr.get() >= 0;
        const int timeout = pidfd.get() < 0 ? kSliceMs : -1;
        // Without a pidfd, fds[0] is ignored by poll (negative fd).
        const int n = poll_signals(fds, feeding ? 2 : 1, timeout);
        if (n < 0 && errno != EINTR) break;
        if (feeding && n > 0 && fds[1].revents != 0) {
            while (off < input.size()) {
                const ssize_t w = ::write(wr.get(), input.data() + off,
                                          std::min<size_t>(input.size() - off, 1 << 16));
                if (w > 0) {
                    off += static_cast<size_t>(w);
                    continue;
                }
                if (w < 0 && errno == EINTR) continue;
                if (w < 0 && errno == EAGAIN) break;
                wr.reset();  // EPIPE: it closed its input
                break;
            }
            if (off == input.size()) wr.reset();  // end of input
        } else if (feeding && input.empty()) {
            wr.reset();
        }
        exited = child_exited(pid, pidfd.get(), fds[0].revents, wstatus, reaped);
    }
    res.read_all = off == input.size();
    wr.reset();
    if (!exited) {
        // A termination signal (or a failed poll): tell the command to stop, wait for it.
        res.kind = CommandResult::Kind::interrupted;
        ::kill(pid, SIGTERM);
        const auto deadline = std::chrono::steady_clock::now() + kStopGrace;
        while (!reaped && std::chrono::steady_clock::now() < deadline) {
            const pid_t r = ::waitpid(pid, &wstatus, WNOHANG);
            if (r == pid || (r < 0 && errno != EINTR)) {
                reaped = true;
                break;
            }
            ::usleep(kSliceMs * 1000);
        }
        if (!reaped) ::kill(pid, SIGKILL);
    }
    while (!reaped) {
        const pid_t r = ::waitpid(pid, &wstatus, 0);
        if (r == pid || (r < 0 && errno != EINTR)) reaped = true;
    }
    if (res.kind == CommandResult::Kind::interrupted || terminated() != 0) {
        res.kind = CommandResult::Kind::interrupted;
        return res;
    }
    if (WIFEXITED(wstatus)) {
        res.kind = CommandResult::Kind::exited;
        res.status = WEXITSTATUS(wstatus);
    } else {
        res.kind = CommandResult::Kind::killed;
        res.status = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
    }
    return res;
}

}  // namespace chronicle::cli
