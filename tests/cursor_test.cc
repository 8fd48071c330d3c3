// Named readers: names, durable cursors, commit, exclusivity across processes, crashes.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "cursor.h"
#include "fs.h"
#include "helpers.h"
#include "segment.h"

using namespace chronicle;

namespace {

// A closed queue at t.queue() with records "r0" .. "r<n-1>".
void write_queue(const test::TempDir& t, int n) {
    auto w = Writer::open(t.queue(), test::small_segments());
    REQUIRE(w.ok());
    for (int i = 0; i < n; ++i) REQUIRE(w.value()->append("r" + std::to_string(i)).ok());
}

Result<std::unique_ptr<Reader>> open_named(const std::string& dir, const std::string& name,
                                           ReaderOptions o = {}) {
    o.name = name;
    return Reader::open(dir, o);
}

// Calls next() `k` times, each of which must hand over a record; returns the last sequence.
uint64_t take(Reader& r, int k) {
    uint64_t last = UINT64_MAX;
    for (int i = 0; i < k; ++i) {
        auto n = r.next();
        REQUIRE(n.ok());
        REQUIRE(n.value().has_value());
        last = n.value()->seq;
    }
    return last;
}

Result<CursorInfo> inspect(const std::string& queue, const std::string& name) {
    const std::string readers = queue + "/readers";
    auto fd = fs::open_dir(readers);
    REQUIRE(fd.ok());
    return inspect_cursor(fd->get(), readers, name);
}

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

// A pipe for one-byte handshakes between a parent and a forked child.
struct Pipe {
    int fd[2] = {-1, -1};
    Pipe() { REQUIRE(::pipe2(fd, O_CLOEXEC) == 0); }
    ~Pipe() {
        for (int f : fd)
            if (f >= 0) ::close(f);
    }
    void send() const { (void)!::write(fd[1], "x", 1); }
    // True if a byte arrived within `ms`; false on timeout or EOF.
    [[nodiscard]] bool wait(int ms = 5000) const {
        pollfd p{fd[0], POLLIN, 0};
        char c;
        return ::poll(&p, 1, ms) == 1 && ::read(fd[0], &c, 1) == 1;
    }
};

// A forked child running `fn` (its return value is the exit status; `fn` must not use
// doctest assertions). Killed and reaped on
// destruction if still running, so that a failing assertion never leaks a process.
struct Child {
    pid_t pid = -1;
    template <class F>
    explicit Child(F fn) {
        pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) ::_exit(fn());
    }
    // Waits for the child; returns its exit status, or 128 + signal.
    int reap() {
        int st = 0;
        REQUIRE(::waitpid(pid, &st, 0) == pid);
        pid = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    int kill9() {
        ::kill(pid, SIGKILL);
        return reap();
    }
    ~Child() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
};

const std::vector<std::string> kBadNames{
    "../x",       "a/b",   ".x",         "x..y",      "",     std::string(300, 'n'),
    "with space", " lead", "trail ",     "tab\there", "a\nb", std::string(101, 'n'),
    "..",         "/abs",  "caf\xc3\xa9"};

}  // namespace

TEST_CASE("InvalidReaderNamesAreRefused") {
    for (const auto& name : kBadNames) {
        CAPTURE(name);
        const Status st = validate_reader_name(name);
        CHECK_FALSE(st.ok());
        CHECK(st.code() == errc::invalid_argument);
    }
}

TEST_CASE("ReaderWithAnInvalidNameIsRefusedAndCreatesNothing") {
    test::TempDir t;
    write_queue(t, 3);
    for (const auto& name : kBadNames) {
        if (name.empty()) continue;  // an empty name means an anonymous reader
        CAPTURE(name);
        auto r = open_named(t.queue(), name);
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code() == errc::invalid_argument);
    }
    CHECK(test::list_dir(t.queue() + "/readers").empty());
    CHECK(test::list_dir(t.path()) == std::vector<std::string>{"q"});
}

TEST_CASE("ValidReaderNamesAreAcceptedAndGetACursorFile") {
    test::TempDir t;
    write_queue(t, 3);
    const std::vector<std::string> good{"a", "consumer-1",         "A.b_c-9", "x.y", "ends.",
                                        "_", std::string(100, 'z')};
    for (const auto& name : good) {
        CAPTURE(name);
        CHECK(validate_reader_name(name).ok());
        auto r = open_named(t.queue(), name);
        REQUIRE(r.ok());
        CHECK(r.value()->name() == name);
        CHECK(std::filesystem::is_regular_file(t.queue() + "/readers/" + name + ".cursor"));
    }
}

TEST_CASE("NamedReaderResumesAfterTheNextRecordOnCleanClose") {
    test::TempDir t;
    write_queue(t, 10);
    {
        auto r = open_named(t.queue(), "c");
        REQUIRE(r.ok());
        CHECK(take(*r.value(), 5) == 4);  // records 0..4 handed over, then destroyed
    }
    auto r = open_named(t.queue(), "c");
    REQUIRE(r.ok());
    CHECK(r.value()->position() == 5);  // reader.h: auto_commit stores on destruction
    CHECK(take(*r.value(), 1) == 5);
}

TEST_CASE("AutoCommitKeepsTheLastHandedRecordUntilTheNextCall") {
    test::TempDir t;
    write_queue(t, 10);
    auto r = open_named(t.queue(), "c");
    REQUIRE(r.ok());
    take(*r.value(), 5);
    CHECK(inspect(t.queue(), "c")->next_seq == 4);  // record 4 not yet confirmed
    take(*r.value(), 1);
    CHECK(inspect(t.queue(), "c")->next_seq == 5);
}

TEST_CASE("WithoutAutoCommitNothingIsStoredUntilCommit") {
    test::TempDir t;
    write_queue(t, 10);
    ReaderOptions o;
    o.auto_commit = false;
    {
        auto r = open_named(t.queue(), "c", o);
        REQUIRE(r.ok());
        take(*r.value(), 5);
    }
    auto r = open_named(t.queue(), "c", o);
    REQUIRE(r.ok());
    CHECK(r.value()->position() == 0);
}

TEST_CASE("ExplicitCommitIsWhereTheReaderResumes") {
    test::TempDir t;
    write_queue(t, 10);
    ReaderOptions o;
    o.auto_commit = false;
    {
        auto r = open_named(t.queue(), "c", o);
        REQUIRE(r.ok());
        take(*r.value(), 5);
        REQUIRE(r.value()->commit().ok());
        take(*r.value(), 2);  // handed over but never committed
    }
    auto r = open_named(t.queue(), "c", o);
    REQUIRE(r.ok());
    CHECK(r.value()->position() == 5);
    CHECK(take(*r.value(), 1) == 5);
}

TEST_CASE("CommitOfAnEarlierSequenceStoresExactlyThat") {
    test::TempDir t;
    write_queue(t, 10);
    ReaderOptions o;
    o.auto_commit = false;
    {
        auto r = open_named(t.queue(), "c", o);
        REQUIRE(r.ok());
        take(*r.value(), 5);
        REQUIRE(r.value()->commit(3).ok());  // only 0..2 were flushed downstream
        CHECK(r.value()->position() == 5);   // reading goes on from where it was
    }
    auto r = open_named(t.queue(), "c", o);
    REQUIRE(r.ok());
    CHECK(take(*r.value(), 1) == 3);
}

TEST_CASE("CommitPastThePositionIsRefusedAndStoresNothing") {
    test::TempDir t;
    write_queue(t, 10);
    ReaderOptions o;
    o.auto_commit = false;
    auto r = open_named(t.queue(), "c", o);
    REQUIRE(r.ok());
    take(*r.value(), 5);
    REQUIRE(r.value()->commit(2).ok());
    const Status st = r.value()->commit(6);
    CHECK(st.code() == errc::invalid_argument);
    CHECK(st.message().find('6') != std::string::npos);
    CHECK(inspect(t.queue(), "c")->next_seq == 2);
    CHECK(r.value()->commit(5).ok());  // exactly position() is fine
    CHECK(inspect(t.queue(), "c")->next_seq == 5);
}

TEST_CASE("RepositionMovesAnExistingCursor") {
    test::TempDir t;
    write_queue(t, 10);
    {
        auto r = open_named(t.queue(), "c");
        REQUIRE(r.ok());
        take(*r.value(), 3);
        REQUIRE(r.value()->commit().ok());
    }
    ReaderOptions o;
    o.start = Position::at_seq(8);
    o.reposition = true;
    { REQUIRE(open_named(t.queue(), "c", o).ok()); }  // opened and closed, nothing read
    auto r = open_named(t.queue(), "c");
    REQUIRE(r.ok());
    CHECK(r.value()->position() == 8);
    CHECK(take(*r.value(), 1) == 8);
}

TEST_CASE("StartIsIgnoredForAnExistingCursorWithoutReposition") {
    test::TempDir t;
    write_queue(t, 10);
    {
        auto r = open_named(t.queue(), "c");
        REQUIRE(r.ok());
        take(*r.value(), 3);
        REQUIRE(r.value()->commit().ok());
    }
    ReaderOptions o;
    o.start = Position::at_seq(8);
    auto r = open_named(t.queue(), "c", o);
    REQUIRE(r.ok());
    CHECK(take(*r.value(), 1) == 3);
}

TEST_CASE("ExistingCursorResumesEvenWhenItsUnusedStartIsNoLongerRetained") {
    test::TempDir t;
    write_queue(t, 3000);  // many 16 KiB segments
    auto bases = files::list_segments(t.queue());
    REQUIRE(bases.ok());
    REQUIRE(bases->size() > 3);
    ReaderOptions o;
    o.start = Position::at_seq(0);  // "create the cursor at the very beginning"
    {
        auto r = open_named(t.queue(), "c", o);
        REQUIRE(r.ok());
        REQUIRE(r.value()->seek(Position::at_seq((*bases)[2] + 1)).ok());
        REQUIRE(r.value()->commit().ok());
    }
    std::filesystem::remove(t.queue() + "/" + files::segment_name((*bases)[0]));  // retention
    // reader.h: `start` is only where a named reader is created; this one exists.
    auto r = open_named(t.queue(), "c", o);
    REQUIRE_MESSAGE(r.ok(), r.status().message());
    CHECK(r.value()->position() == (*bases)[2] + 1);
}

TEST_CASE("NewNamedReaderIsCreatedAtItsStartPosition") {
    test::TempDir t;
    write_queue(t, 10);
    ReaderOptions o;
    o.start = Position::end();
    { REQUIRE(open_named(t.queue(), "tail", o).ok()); }
    CHECK(inspect(t.queue(), "tail")->next_seq == 10);
    auto r = open_named(t.queue(), "tail");
    REQUIRE(r.ok());
    CHECK(r.value()->position() == 10);
}

TEST_CASE("MissingReaderWithoutCreateIsNotFound") {
    test::TempDir t;
    write_queue(t, 3);
    ReaderOptions o;
    o.create = false;
    auto r = open_named(t.queue(), "ghost", o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == errc::not_found);
    CHECK(r.status().message().find("ghost") != std::string::npos);
    CHECK(test::list_dir(t.queue() + "/readers").empty());
}

TEST_CASE("SameNameTwiceInOneProcessIsBusy") {
    test::TempDir t;
    write_queue(t, 10);
    auto a = open_named(t.queue(), "c");
    REQUIRE(a.ok());
    take(*a.value(), 2);
    auto b = open_named(t.queue(), "c");
    REQUIRE_FALSE(b.ok());
    CHECK(b.status().code() == errc::busy);
    CHECK(b.status().message().find("pid " + std::to_string(::getpid())) != std::string::npos);
    // The refused attempt did not disturb the holder, nor release its lock.
    CHECK(take(*a.value(), 1) == 2);
    CHECK(open_named(t.queue(), "c").status().code() == errc::busy);
}

TEST_CASE("NameHeldByAnotherProcessIsBusyNamingItsPid") {
    test::TempDir t;
    write_queue(t, 10);
    Pipe ready, done;
    Child child([&] {
        auto r = open_named(t.queue(), "c");
        if (!r.ok()) return 1;
        ready.send();
        return done.wait(10000) ? 0 : 2;
    });
    REQUIRE(ready.wait());
    auto r = open_named(t.queue(), "c");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == errc::busy);
    CHECK(r.status().message().find("pid " + std::to_string(child.pid)) != std::string::npos);
    done.send();
    CHECK(child.reap() == 0);
    CHECK(open_named(t.queue(), "c").ok());  // the holder exited: the name is free
}

TEST_CASE("NameIsFreeAgainAfterTheHolderIsKilled") {
    test::TempDir t;
    write_queue(t, 10);
    Pipe ready;
    Child child([&] {
        auto r = open_named(t.queue(), "c");
        if (!r.ok()) return 1;
        ready.send();
        for (;;) ::pause();
    });
    REQUIRE(ready.wait());
    CHECK(open_named(t.queue(), "c").status().code() == errc::busy);
    CHECK(child.kill9() == 128 + SIGKILL);
    auto r = open_named(t.queue(), "c");
    CHECK(r.ok());
}

TEST_CASE("ReaderKilledMidStreamResumesAtLeastOnce") {
    test::TempDir t;
    const int n = 20000;
    write_queue(t, n);
    // [0]: records the child has handed over; [1]: the sequence of its first record.
    auto* shared = static_cast<std::atomic<uint64_t>*>(
        ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    REQUIRE(shared != MAP_FAILED);
    uint64_t resumed = 0;
    for (int round = 0; round < 3; ++round) {
        CAPTURE(round);
        shared[0] = resumed;
        shared[1] = UINT64_MAX;
        Child child([&] {
            auto r = open_named(t.queue(), "c");  // auto_commit
            if (!r.ok()) return 1;
            for (;;) {
                auto rec = r.value()->next();
                if (!rec.ok()) return 2;
                if (!rec.value()) continue;
                if (shared[1] == UINT64_MAX) shared[1] = rec.value()->seq;
                shared[0] = rec.value()->seq + 1;
                ::usleep(20);
            }
        });
        const uint64_t goal = resumed + 300;
        for (int i = 0; i < 5000 && shared[0] < goal; ++i) ::usleep(1000);
        REQUIRE(child.kill9() == 128 + SIGKILL);
        const uint64_t handed = shared[0];
        CHECK(shared[1] == resumed);  // the previous round's cursor is where it went on
        auto r = open_named(t.queue(), "c");
        REQUIRE(r.ok());
        resumed = r.value()->position();
        CHECK(resumed <= handed);
        CHECK(resumed + 1 >= handed);
    }
    ::munmap(shared, 4096);
}

TEST_CASE("SymlinkPlantedAsCursorIsRefusedAndItsTargetUntouched") {
    test::TempDir t;
    write_queue(t, 10);
    const std::string outside = t.path() + "/precious.txt";
    std::ofstream(outside) << "do not overwrite";
    const std::string link = t.queue() + "/readers/evil.cursor";
    std::filesystem::create_symlink(outside, link);
    auto r = open_named(t.queue(), "evil");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == errc::corrupt);
    CHECK(r.status().message().find(link) != std::string::npos);
    CHECK(slurp(outside) == "do not overwrite");
    CHECK(std::filesystem::is_symlink(link));
    CHECK(inspect(t.queue(), "evil").status().code() != errc::ok);
}

TEST_CASE("DanglingSymlinkAsCursorIsRefusedAndCreatesNoTarget") {
    test::TempDir t;
    write_queue(t, 10);
    const std::string outside = t.path() + "/would-be-created";
    const std::string link = t.queue() + "/readers/evil.cursor";
    std::filesystem::create_symlink(outside, link);
    auto r = open_named(t.queue(), "evil");
    REQUIRE_FALSE(r.ok());
    CHECK_FALSE(std::filesystem::exists(outside));
    CHECK(std::filesystem::is_symlink(link));
}

TEST_CASE("InspectReportsPositionAndLockedWhileHeld") {
    test::TempDir t;
    write_queue(t, 10);
    auto r = open_named(t.queue(), "c");
    REQUIRE(r.ok());
    take(*r.value(), 6);
    REQUIRE(r.value()->commit().ok());
    auto info = inspect(t.queue(), "c");
    REQUIRE(info.ok());
    CHECK(info->name == "c");
    CHECK(info->next_seq == 6);
    CHECK(info->locked);
    CHECK(info->owner_pid == static_cast<uint64_t>(::getpid()));
    CHECK(info->commit_ns >= info->created_ns);
}

TEST_CASE("InspectReportsUnlockedAfterRelease") {
    test::TempDir t;
    write_queue(t, 10);
    {
        auto r = open_named(t.queue(), "c");
        REQUIRE(r.ok());
        take(*r.value(), 4);
    }
    auto info = inspect(t.queue(), "c");
    REQUIRE(info.ok());
    CHECK_FALSE(info->locked);
    CHECK(info->next_seq == 4);
    CHECK(inspect(t.queue(), "nobody").status().code() == errc::not_found);
}

TEST_CASE("InspectSeesAnotherProcessHoldingTheName") {
    test::TempDir t;
    write_queue(t, 10);
    Pipe ready, done;
    Child child([&] {
        auto r = open_named(t.queue(), "c");
        if (!r.ok()) return 1;
        for (int i = 0; i < 7; ++i) {
            auto n = r.value()->next();
            if (!n.ok() || !n.value()) return 2;
        }
        if (!r.value()->commit().ok()) return 2;
        ready.send();
        return done.wait(10000) ? 0 : 3;
    });
    REQUIRE(ready.wait());
    auto held = inspect(t.queue(), "c");
    REQUIRE(held.ok());
    CHECK(held->locked);
    CHECK(held->owner_pid == static_cast<uint64_t>(child.pid));
    CHECK(held->next_seq == 7);
    done.send();
    CHECK(child.reap() == 0);
    CHECK_FALSE(inspect(t.queue(), "c")->locked);
}

TEST_CASE("InspectingDoesNotTakeTheLock") {
    test::TempDir t;
    write_queue(t, 10);
    { REQUIRE(open_named(t.queue(), "c").ok()); }
    Pipe ready;
    Child inspector([&] {
        ready.send();
        const std::string readers = t.queue() + "/readers";
        for (;;) {
            auto fd = fs::open_dir(readers);
            if (!fd.ok() || !inspect_cursor(fd->get(), readers, "c").ok()) return 1;
        }
    });
    REQUIRE(ready.wait());
    int refused = 0;
    for (int i = 0; i < 300; ++i) refused += open_named(t.queue(), "c").ok() ? 0 : 1;
    CHECK(refused == 0);
    CHECK(inspector.kill9() == 128 + SIGKILL);  // it was still inspecting, without error
}

TEST_CASE("ListReaderNamesReturnsCursorsSortedAndSkipsStrayFiles") {
    test::TempDir t;
    write_queue(t, 3);
    for (const char* name : {"b", "a", "c-1"}) REQUIRE(open_named(t.queue(), name).ok());
    const std::string readers = t.queue() + "/readers";
    std::ofstream(readers + "/.a.cursor.123.tmp") << "";
    std::ofstream(readers + "/notes.txt") << "";
    std::ofstream(readers + "/bad name.cursor") << "";
    std::ofstream(readers + "/.cursor") << "";
    auto names = list_reader_names(readers);
    REQUIRE(names.ok());
    CHECK(names.value() == std::vector<std::string>{"a", "b", "c-1"});
}
