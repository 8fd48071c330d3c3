// The admin API (chronicle/admin.h, what chronicle-readers shows and does), called directly:
// a queue's statistics, its readers as a user sees them (position, lag, who holds them,
// followers, damaged cursors), and the changes an operator makes — create, delete, reset,
// gc — with their refusals.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "chronicle/admin.h"
#include "chronicle/reader.h"
#include "chronicle/writer.h"
#include "format.h"
#include "helpers.h"
#include "queue_files.h"

using namespace chronicle;
using namespace std::chrono_literals;

namespace {

// A closed queue at `q` with records "record-0" .. "record-<n-1>"; returns them.
std::vector<std::string> write_records(const std::string& q, int n, uint64_t seg = 16 * 1024) {
    auto w = Writer::open(q, test::small_segments(seg));
    REQUIRE(w.ok());
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
        out.push_back("record-" + std::to_string(i));
        REQUIRE(w.value()->append(out.back()).ok());
    }
    return out;
}

// Bytes the records [from, to) of `records` occupy in a segment, headers included.
uint64_t span_of(const std::vector<std::string>& records, size_t from, size_t to) {
    uint64_t n = 0;
    for (size_t i = from; i < to; ++i) n += format::record_span(records[i].size());
    return n;
}

std::string cursor_file(const std::string& q, const std::string& name) {
    return q + "/readers/" + name + ".cursor";
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

std::unique_ptr<Reader> open_named(const std::string& q, const std::string& name,
                                   Position start = Position::start()) {
    ReaderOptions o;
    o.name = name;
    o.start = start;
    auto r = Reader::open(q, o);
    REQUIRE_MESSAGE(r.ok(), r.status().message());
    return std::move(r.value());
}

// The sequence of the next record the named reader `name` hands over, read by opening it.
uint64_t next_seq_of(const std::string& q, const std::string& name) {
    ReaderOptions o;
    o.name = name;
    o.create = false;
    o.auto_commit = false;
    auto r = Reader::open(q, o);
    REQUIRE_MESSAGE(r.ok(), r.status().message());
    auto n = r.value()->next();
    REQUIRE(n.ok());
    REQUIRE(n.value().has_value());
    return n.value()->seq;
}

// Reads until the end of the committed data (what a follower does before it waits); false
// on an error.
bool drain(Reader& r) {
    for (;;) {
        auto n = r.next();
        if (!n.ok()) return false;
        if (!n.value()) return true;
    }
}

uint64_t realtime_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Sets the times of every file in q/readers to `secs` seconds ago (past gc's grace period
// for fresh files, without sleeping).
void age_reader_files(const std::string& q, int secs) {
    timespec ts{};
    REQUIRE(::clock_gettime(CLOCK_REALTIME, &ts) == 0);
    ts.tv_sec -= secs;
    const timespec times[2] = {ts, ts};
    for (const auto& f : test::list_dir(q + "/readers")) {
        const std::string path = q + "/readers/" + f;
        REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
    }
}

// Backdates the time the reader's position was last stored by `secs` seconds.
void age_commit(const std::string& q, const std::string& name, uint64_t secs) {
    test::poke<uint64_t>(cursor_file(q, name), offsetof(format::CursorHeader, commit_ns),
                         realtime_ns() - secs * 1000000000ull);
}

std::vector<std::string> names_of(const std::vector<ReaderStats>& rs) {
    std::vector<std::string> out;
    for (const auto& r : rs) out.push_back(r.name);
    return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// A forked child that runs `setup` (no doctest assertions in it; a nonzero return is its
// exit status), tells the parent it is ready and then waits to be killed. Killed and reaped
// on destruction, so a failing assertion never leaks a process.
class Holder {
  public:
    template <class F>
    explicit Holder(F setup) {
        int p[2];
        REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::close(p[0]);
            const int rc = setup();
            if (rc != 0) ::_exit(rc);
            (void)!::write(p[1], "x", 1);
            for (;;) ::pause();
        }
        ::close(p[1]);
        pollfd pf{p[0], POLLIN, 0};
        char c = 0;
        const bool ready = ::poll(&pf, 1, 30000) == 1 && ::read(p[0], &c, 1) == 1;
        ::close(p[0]);
        if (!ready) {
            int st = 0;
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &st, 0);
            pid_ = -1;
            FAIL("the child did not get ready (exit status "
                 << (WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st)) << ")");
        }
    }
    ~Holder() { kill(); }
    Holder(const Holder&) = delete;
    Holder& operator=(const Holder&) = delete;
    [[nodiscard]] pid_t pid() const { return pid_; }
    // SIGKILL, as a crash: whatever the child created stays behind.
    void kill() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

  private:
    pid_t pid_ = -1;
};

// Follows `q` as the named reader `name` and as an anonymous reader (both parked at the end,
// registered as followers), in a child process.
int follow_named_and_anonymous(const std::string& q, const std::string& name) {
    ReaderOptions named;
    named.name = name;
    named.start = Position::end();
    auto r = Reader::open(q, named);
    if (!r.ok()) return 10;
    ReaderOptions anon;
    anon.start = Position::end();
    auto a = Reader::open(q, anon);
    if (!a.ok()) return 11;
    if (!drain(*r.value()) || !drain(*a.value())) return 12;
    auto armed = r.value()->prepare_wait();
    if (!armed.ok() || !armed.value()) return 13;
    armed = a.value()->prepare_wait();
    if (!armed.ok() || !armed.value()) return 14;
    r.value().release();  // kept until the process is killed
    a.value().release();
    return 0;
}

// The files in q/readers a dead process `pid` left as anonymous follower "~anon.<pid>.<n>".
std::vector<std::string> ephemeral_files_of(const std::string& q, pid_t pid) {
    std::vector<std::string> out;
    const std::string prefix = "~anon." + std::to_string(pid) + ".";
    for (const auto& f : test::list_dir(q + "/readers")) {
        if (f.rfind(prefix, 0) == 0) out.push_back(f);
    }
    return out;
}

}  // namespace

// ---- inspect_queue -------------------------------------------------------------------------

TEST_CASE("AnEmptyQueueHasNoRecordsNoTimestampAndNoWriter") {
    test::TempDir t;
    write_records(t.queue(), 0);
    auto s = inspect_queue(t.queue());
    REQUIRE_MESSAGE(s.ok(), s.status().message());
    CHECK(s->dir == t.queue());
    CHECK(s->first_seq == 0);
    CHECK(s->head_seq == 0);
    CHECK(s->last_timestamp_ns == 0);
    CHECK_FALSE(s->writer_alive);
}

TEST_CASE("InspectQueueCountsTheRecordsSegmentsAndBytesOnDisk") {
    test::TempDir t;
    write_records(t.queue(), 2000);
    uint64_t files = 0;
    uint64_t bytes = 0;
    for (const auto& f : test::list_dir(t.queue())) {
        if (f.ends_with(".seg")) {
            ++files;
            bytes += std::filesystem::file_size(t.queue() + "/" + f);
        }
    }
    REQUIRE(files >= 3);  // several segments, or this proves little
    ReaderOptions ro;
    ro.start = Position::last(1);
    auto r = Reader::open(t.queue(), ro);
    REQUIRE(r.ok());
    auto last = r.value()->next();
    REQUIRE(last.ok());
    REQUIRE(last.value().has_value());

    auto s = inspect_queue(t.queue());
    REQUIRE_MESSAGE(s.ok(), s.status().message());
    CHECK(s->first_seq == 0);
    CHECK(s->head_seq == 2000);
    CHECK(s->segments == files);
    CHECK(s->bytes == bytes);
    CHECK(s->segment_size == 16 * 1024);
    CHECK(s->last_timestamp_ns == last.value()->timestamp_ns);
    CHECK(s->disk_free > 0);
    CHECK_FALSE(s->writer_alive);
}

TEST_CASE("InspectQueueShowsTheWriterWhileItIsOpenAndNotAfterItCloses") {
    test::TempDir t;
    write_records(t.queue(), 5);
    {
        auto w = Writer::open(t.queue());
        REQUIRE(w.ok());
        REQUIRE(w.value()->append("record-5").ok());
        auto s = inspect_queue(t.queue());
        REQUIRE_MESSAGE(s.ok(), s.status().message());
        CHECK(s->writer_alive);
        CHECK(s->writer_pid == ::getpid());
        CHECK(s->head_seq == 6);  // what the open writer committed counts at once
    }
    auto s = inspect_queue(t.queue());
    REQUIRE_MESSAGE(s.ok(), s.status().message());
    CHECK_FALSE(s->writer_alive);
    CHECK(s->head_seq == 6);
}

TEST_CASE("WhyALiveWriterWakesNoFollowerIsShownUntilItCloses") {
    test::TempDir t;
    write_records(t.queue(), 1);
    {
        auto w = Writer::open(t.queue());
        REQUIRE(w.ok());
        auto s = inspect_queue(t.queue());
        REQUIRE_MESSAGE(s.ok(), s.status().message());
        CHECK(s->notifier_status.empty());  // it wakes followers (or, portable: nobody to)
        // What a writer whose notifier failed writes into its writer.lock.
        files::WriterLockText text;
        text.pid = ::getpid();
        text.start_time = fs::process_start_time(::getpid());
        text.notifier = "followers are not woken (they poll): cannot create an eventfd";
        const int fd = ::open((t.queue() + "/writer.lock").c_str(), O_RDWR | O_CLOEXEC);
        REQUIRE(fd >= 0);
        CHECK(files::write_writer_lock(fd, t.queue(), text).ok());
        ::close(fd);
        s = inspect_queue(t.queue());
        REQUIRE_MESSAGE(s.ok(), s.status().message());
        CHECK(s->writer_alive);
        CHECK(s->writer_pid == ::getpid());
        CHECK(s->notifier_status == text.notifier);
    }
    auto s = inspect_queue(t.queue());
    REQUIRE_MESSAGE(s.ok(), s.status().message());
    CHECK(s->notifier_status.empty());  // no live writer: nothing to say
}

TEST_CASE("AWriterInAnotherProcessIsShownWithItsPidUntilItDies") {
    test::TempDir t;
    write_records(t.queue(), 1);
    const std::string q = t.queue();
    Holder writer([&q] {
        auto w = Writer::open(q);
        if (!w.ok()) return 10;
        if (!w.value()->append("record-1").ok()) return 11;
        w.value().release();  // held until the process is killed
        return 0;
    });
    auto s = inspect_queue(q);
    REQUIRE_MESSAGE(s.ok(), s.status().message());
    CHECK(s->writer_alive);
    CHECK(s->writer_pid == writer.pid());
    CHECK(s->head_seq == 2);
    writer.kill();
    s = inspect_queue(q);
    REQUIRE_MESSAGE(s.ok(), s.status().message());
    CHECK_FALSE(s->writer_alive);
}

TEST_CASE("InspectingADirectoryThatIsNotAQueueIsNotFound") {
    test::TempDir t;
    for (const std::string& dir : {t.path(), t.path() + "/missing"}) {
        CAPTURE(dir);
        auto s = inspect_queue(dir);
        REQUIRE_FALSE(s.ok());
        CHECK(s.status().code() == errc::not_found);
        auto rs = inspect_readers(dir);
        REQUIRE_FALSE(rs.ok());
        CHECK(rs.status().code() == errc::not_found);
    }
}

// ---- inspect_readers / inspect_reader ------------------------------------------------------

TEST_CASE("EachNamedReaderIsShownWithItsPositionAndLag") {
    test::TempDir t;
    const auto recs = write_records(t.queue(), 10, 1024 * 1024);  // one segment
    {
        auto a = open_named(t.queue(), "a");
        for (int i = 0; i < 4; ++i) REQUIRE(a->next().ok());  // hands over 0..3
    }                                                         // auto-commit on close: position 4
    REQUIRE(create_reader(t.queue(), "b", Position::end()).ok());
    REQUIRE(create_reader(t.queue(), "c", Position::start()).ok());

    auto rs = inspect_readers(t.queue());
    REQUIRE_MESSAGE(rs.ok(), rs.status().message());
    REQUIRE(names_of(rs.value()) == std::vector<std::string>{"a", "b", "c"});
    const ReaderStats& a = rs.value()[0];
    const ReaderStats& b = rs.value()[1];
    const ReaderStats& c = rs.value()[2];
    for (const ReaderStats* r : {&a, &b, &c}) {
        CAPTURE(r->name);
        CHECK_FALSE(r->ephemeral);
        CHECK_FALSE(r->alive);
        CHECK_FALSE(r->damaged);
        CHECK(r->damage.empty());
        CHECK(r->created_ns > 0);
        CHECK(r->commit_ns >= r->created_ns);
        CHECK_FALSE(r->follower.registered);
    }
    CHECK(a.position == 4);
    CHECK(a.lag == 6);
    CHECK(a.lag_bytes == span_of(recs, 4, 10));
    CHECK(b.position == 10);
    CHECK(b.lag == 0);
    CHECK(b.lag_bytes == 0);
    CHECK(b.lag_seconds == 0);
    CHECK(c.position == 0);
    CHECK(c.lag == 10);
    CHECK(c.lag_bytes == span_of(recs, 0, 10));

    // One reader alone reports the same.
    auto one = inspect_reader(t.queue(), "a");
    REQUIRE_MESSAGE(one.ok(), one.status().message());
    CHECK(one->name == "a");
    CHECK(one->position == 4);
    CHECK(one->lag == 6);
    CHECK(one->lag_bytes == a.lag_bytes);
}

TEST_CASE("LagBytesAcrossSegmentsCoverEveryUnreadRecordAndNoMoreThanTheSegments") {
    test::TempDir t;
    const auto recs = write_records(t.queue(), 2000);
    REQUIRE(create_reader(t.queue(), "from-start", Position::start()).ok());
    REQUIRE(create_reader(t.queue(), "mid", Position::at_seq(1000)).ok());
    auto q = inspect_queue(t.queue());
    REQUIRE(q.ok());
    REQUIRE(q->segments >= 3);
    for (const auto& [name, from] : {std::pair<std::string, size_t>{"from-start", 0},
                                     std::pair<std::string, size_t>{"mid", 1000}}) {
        CAPTURE(name);
        auto r = inspect_reader(t.queue(), name);
        REQUIRE_MESSAGE(r.ok(), r.status().message());
        CHECK(r->lag == 2000 - from);
        CHECK(r->lag_bytes >= span_of(recs, from, 2000));  // an upper bound of what is unread
        CHECK(r->lag_bytes <= q->bytes);
    }
    auto all = inspect_reader(t.queue(), "from-start");
    auto mid = inspect_reader(t.queue(), "mid");
    REQUIRE((all.ok() && mid.ok()));
    CHECK(mid->lag_bytes < all->lag_bytes);
}

TEST_CASE("InspectReaderOfANameWithoutACursorIsNotFound") {
    test::TempDir t;
    write_records(t.queue(), 3);
    auto r = inspect_reader(t.queue(), "nobody");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == errc::not_found);
    auto rs = inspect_readers(t.queue());
    REQUIRE(rs.ok());
    CHECK(rs->empty());
}

TEST_CASE("ANamedReaderIsAliveWithItsOwnerPidOnlyWhileAProcessHoldsIt") {
    test::TempDir t;
    write_records(t.queue(), 5);
    {
        auto r = open_named(t.queue(), "mine");
        auto s = inspect_reader(t.queue(), "mine");
        REQUIRE_MESSAGE(s.ok(), s.status().message());
        CHECK(s->alive);
        CHECK(s->owner_pid == ::getpid());
        auto rs = inspect_readers(t.queue());
        REQUIRE(rs.ok());
        REQUIRE(rs->size() == 1);
        CHECK(rs->front().alive);
        CHECK(rs->front().owner_pid == ::getpid());
    }
    auto s = inspect_reader(t.queue(), "mine");
    REQUIRE(s.ok());
    CHECK_FALSE(s->alive);
    CHECK(s->owner_pid == 0);

    const std::string q = t.queue();
    Holder other([&q] {
        ReaderOptions o;
        o.name = "mine";
        auto r = Reader::open(q, o);
        if (!r.ok()) return 10;
        r.value().release();
        return 0;
    });
    s = inspect_reader(q, "mine");
    REQUIRE(s.ok());
    CHECK(s->alive);
    CHECK(s->owner_pid == other.pid());
    other.kill();  // the kernel drops a dead holder's lock
    s = inspect_reader(q, "mine");
    REQUIRE(s.ok());
    CHECK_FALSE(s->alive);
    CHECK(s->owner_pid == 0);
}

TEST_CASE("AWaitingAnonymousFollowerIsListedAsAnEphemeralReaderUntilItStops") {
    test::TempDir t;
    write_records(t.queue(), 3);
    auto w = Writer::open(t.queue());
    REQUIRE(w.ok());
    Status waited;
    // Joined on the way out even when an assertion fails first (then after its timeout).
    std::jthread follower([&] {
        ReaderOptions ro;
        ro.start = Position::end();
        auto r = Reader::open(t.queue(), ro);
        if (!r.ok()) {
            waited = r.status();
            return;
        }
        if (!drain(*r.value())) {
            waited = Status(errc::corrupt, "next() failed");
            return;
        }
        waited = r.value()->wait(60s);
    });
    // Until the follower sleeps in wait(): then it must be listed.
    std::vector<ReaderStats> seen;
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < give_up) {
        auto rs = inspect_readers(t.queue());
        REQUIRE_MESSAGE(rs.ok(), rs.status().message());
        if (rs->size() == 1 && rs->front().follower.sleeping) {
            seen = rs.value();
            break;
        }
        std::this_thread::sleep_for(1ms);
    }
    REQUIRE(w.value()->append("record-3").ok());  // wakes it
    follower.join();
    CHECK_MESSAGE(waited.ok(), waited.message());

    REQUIRE(seen.size() == 1);
    const ReaderStats& e = seen.front();
    CHECK(e.name.rfind("~anon." + std::to_string(::getpid()) + ".", 0) == 0);
    CHECK(e.ephemeral);
    CHECK(e.alive);
    CHECK(e.owner_pid == ::getpid());
    CHECK_FALSE(e.damaged);
    CHECK(e.position == 3);
    CHECK(e.lag == 0);
    CHECK(e.follower.registered);
    CHECK(e.follower.pid == ::getpid());
    CHECK(e.follower.pid_alive);
    CHECK(e.follower.sleeping);

    // Gone with the reader, files and all.
    auto rs = inspect_readers(t.queue());
    REQUIRE(rs.ok());
    CHECK(rs->empty());
    CHECK(test::list_dir(t.queue() + "/readers").empty());
}

TEST_CASE("ANamedFollowerShowsItsRegistration") {
    test::TempDir t;
    write_records(t.queue(), 3);
    auto r = open_named(t.queue(), "mon", Position::end());
    REQUIRE(drain(*r));
    auto armed = r->prepare_wait();
    REQUIRE(armed.ok());
    REQUIRE(armed.value());
    auto s = inspect_reader(t.queue(), "mon");
    REQUIRE_MESSAGE(s.ok(), s.status().message());
    CHECK(s->alive);
    CHECK_FALSE(s->ephemeral);
    CHECK(s->follower.registered);
    CHECK(s->follower.pid == ::getpid());
    CHECK(s->follower.pid_alive);
    CHECK(s->follower.sleeping);
}

TEST_CASE("ADamagedCursorFileIsListedAsDamagedNotLeftOut") {
    test::TempDir t;
    write_records(t.queue(), 5);
    REQUIRE(create_reader(t.queue(), "bad", Position::at_seq(2)).ok());
    REQUIRE(create_reader(t.queue(), "good", Position::at_seq(3)).ok());
    const std::string bad = cursor_file(t.queue(), "bad");
    std::string why;
    SUBCASE("truncated") {
        REQUIRE(::truncate(bad.c_str(), 100) == 0);
        why = "size 100";
    }
    SUBCASE("wrong magic") {
        test::poke(bad, offsetof(format::CursorHeader, magic), "NOTACURS");
        why = "wrong magic";
    }
    SUBCASE("unknown version") {
        test::poke<uint32_t>(bad, offsetof(format::CursorHeader, version), 99);
        why = "version 99";
    }
    SUBCASE("a FIFO in its place") {  // listed without blocking on it
        REQUIRE(::unlink(bad.c_str()) == 0);
        REQUIRE(::mkfifo(bad.c_str(), 0644) == 0);
        why = "FIFO";
    }
    CAPTURE(why);
    auto rs = inspect_readers(t.queue());
    REQUIRE_MESSAGE(rs.ok(), rs.status().message());
    REQUIRE(names_of(rs.value()) == std::vector<std::string>{"bad", "good"});
    const ReaderStats& b = rs.value()[0];
    CHECK(b.damaged);
    CHECK_MESSAGE(contains(b.damage, "bad.cursor"), b.damage);
    CHECK_MESSAGE(contains(b.damage, why), b.damage);
    CHECK_FALSE(b.alive);
    CHECK(b.position == 0);
    CHECK(b.lag == 0);
    // The other reader is reported as usual.
    const ReaderStats& g = rs.value()[1];
    CHECK_FALSE(g.damaged);
    CHECK(g.position == 3);
    CHECK(g.lag == 2);

    auto one = inspect_reader(t.queue(), "bad");
    REQUIRE_MESSAGE(one.ok(), one.status().message());
    CHECK(one->damaged);
    CHECK_MESSAGE(contains(one->damage, why), one->damage);
}

// ---- create_reader -------------------------------------------------------------------------

TEST_CASE("CreateReaderPlacesANewNameWhereItIsAsked") {
    test::TempDir t;
    write_records(t.queue(), 10);
    REQUIRE(create_reader(t.queue(), "at4", Position::at_seq(4)).ok());
    REQUIRE(create_reader(t.queue(), "at-head", Position::at_seq(10)).ok());
    REQUIRE(create_reader(t.queue(), "last2", Position::last(2)).ok());
    REQUIRE(create_reader(t.queue(), "end", Position::end()).ok());
    for (const auto& [name, pos] :
         {std::pair<std::string, uint64_t>{"at4", 4}, {"at-head", 10}, {"last2", 8}, {"end", 10}}) {
        CAPTURE(name);
        auto s = inspect_reader(t.queue(), name);
        REQUIRE_MESSAGE(s.ok(), s.status().message());
        CHECK(s->position == pos);
        CHECK_FALSE(s->alive);  // created, not held
    }
    CHECK(next_seq_of(t.queue(), "at4") == 4);
    CHECK(next_seq_of(t.queue(), "last2") == 8);
}

TEST_CASE("CreateReaderRefusesANameThatExistsAndLeavesItAsItWas") {
    test::TempDir t;
    write_records(t.queue(), 10);
    REQUIRE(create_reader(t.queue(), "r", Position::at_seq(2)).ok());
    const std::string before = test::file_bytes(cursor_file(t.queue(), "r"));
    Status st = create_reader(t.queue(), "r", Position::at_seq(5));
    CHECK(st.code() == errc::busy);
    CHECK(test::file_bytes(cursor_file(t.queue(), "r")) == before);
    {
        auto held = open_named(t.queue(), "held");
        st = create_reader(t.queue(), "held", Position::at_seq(5));
        CHECK(st.code() == errc::busy);
    }
    auto s = inspect_reader(t.queue(), "held");
    REQUIRE(s.ok());
    CHECK(s->position == 0);
}

TEST_CASE("CreateReaderRefusesAPositionPastTheHeadAndCreatesNothing") {
    test::TempDir t;
    write_records(t.queue(), 10);
    Status st = create_reader(t.queue(), "r", Position::at_seq(11));
    CHECK(st.code() == errc::invalid_argument);
    CHECK_MESSAGE(contains(st.message(), "past the head"), st.message());
    CHECK(test::list_dir(t.queue() + "/readers").empty());
}

TEST_CASE("AdminChangesRefuseInvalidReaderNames") {
    test::TempDir t;
    write_records(t.queue(), 3);
    for (const std::string name : {"../x", "a/b", ".hidden", "", "with space"}) {
        CAPTURE(name);
        CHECK(create_reader(t.queue(), name, Position::start()).code() == errc::invalid_argument);
        CHECK(delete_reader(t.queue(), name).code() == errc::invalid_argument);
        auto r = reset_reader(t.queue(), name, Position::start(), false);
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code() == errc::invalid_argument);
    }
    CHECK(test::list_dir(t.queue() + "/readers").empty());
    CHECK(test::list_dir(t.path()) == std::vector<std::string>{"q"});
}

// ---- delete_reader -------------------------------------------------------------------------

TEST_CASE("DeleteReaderRemovesThatReadersCursorEfdAndFifoAndNothingElse") {
    test::TempDir t;
    write_records(t.queue(), 3);
    const std::string q = t.queue();
    Holder dead([&q] { return follow_named_and_anonymous(q, "mon"); });
    const pid_t pid = dead.pid();
    dead.kill();  // leaves mon.cursor, mon.efd, mon.fifo and an ephemeral follower's files
    REQUIRE(exists(q + "/readers/mon.efd"));
    REQUIRE(create_reader(q, "mon2", Position::start()).ok());
    std::ofstream(q + "/readers/mon.notes") << "kept";
    const auto anon = ephemeral_files_of(q, pid);
    REQUIRE_FALSE(anon.empty());

    Status st = delete_reader(q, "mon");
    REQUIRE_MESSAGE(st.ok(), st.message());
    for (const char* f : {"mon.cursor", "mon.efd", "mon.fifo"}) {
        CAPTURE(f);
        CHECK_FALSE(exists(q + "/readers/" + f));
    }
    std::vector<std::string> left = anon;
    left.push_back("mon.notes");
    left.push_back("mon2.cursor");
    CHECK(test::list_dir(q + "/readers") == sorted(left));
    auto gone = inspect_reader(q, "mon");
    REQUIRE_FALSE(gone.ok());
    CHECK(gone.status().code() == errc::not_found);
    CHECK(delete_reader(q, "mon").code() == errc::not_found);
}

TEST_CASE("DeleteReaderIsRefusedWhileAProcessHoldsTheName") {
    test::TempDir t;
    write_records(t.queue(), 3);
    {
        auto r = open_named(t.queue(), "held");
        Status st = delete_reader(t.queue(), "held");
        CHECK(st.code() == errc::busy);
        CHECK(exists(cursor_file(t.queue(), "held")));
    }
    const std::string q = t.queue();
    Holder other([&q] {
        ReaderOptions o;
        o.name = "held";
        auto r = Reader::open(q, o);
        if (!r.ok()) return 10;
        r.value().release();
        return 0;
    });
    CHECK(delete_reader(q, "held").code() == errc::busy);
    CHECK(exists(cursor_file(q, "held")));
    other.kill();
    Status st = delete_reader(q, "held");
    CHECK_MESSAGE(st.ok(), st.message());
    CHECK_FALSE(exists(cursor_file(q, "held")));
}

TEST_CASE("DeleteReaderRemovesADamagedCursor") {
    test::TempDir t;
    write_records(t.queue(), 3);
    REQUIRE(create_reader(t.queue(), "bad", Position::start()).ok());
    const std::string bad = cursor_file(t.queue(), "bad");
    const std::string target = t.path() + "/target";
    std::ofstream(target) << "not a queue file";
    SUBCASE("truncated") {
        REQUIRE(::truncate(bad.c_str(), 100) == 0);
    }
    SUBCASE("wrong magic") {
        test::poke(bad, offsetof(format::CursorHeader, magic), "NOTACURS");
    }
    SUBCASE("a FIFO in its place") {
        REQUIRE(::unlink(bad.c_str()) == 0);
        REQUIRE(::mkfifo(bad.c_str(), 0644) == 0);
    }
    SUBCASE("a symlink in its place") {  // the link goes, never its target
        REQUIRE(::unlink(bad.c_str()) == 0);
        REQUIRE(::symlink(target.c_str(), bad.c_str()) == 0);
    }
    auto before = inspect_reader(t.queue(), "bad");
    REQUIRE(before.ok());
    REQUIRE(before->damaged);
    Status st = delete_reader(t.queue(), "bad");
    CHECK_MESSAGE(st.ok(), st.message());
    CHECK_FALSE(exists(bad));
    auto rs = inspect_readers(t.queue());
    REQUIRE(rs.ok());
    CHECK(rs->empty());
    CHECK(test::file_bytes(target) == "not a queue file");
}

TEST_CASE("DeleteReaderLeavesADirectoryByTheCursorsNameAlone") {
    test::TempDir t;
    write_records(t.queue(), 3);
    const std::string dir = cursor_file(t.queue(), "d");
    REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
    std::ofstream(dir + "/inside") << "x";
    CHECK_FALSE(delete_reader(t.queue(), "d").ok());
    CHECK(test::list_dir(dir) == std::vector<std::string>{"inside"});
}

// ---- reset_reader --------------------------------------------------------------------------

TEST_CASE("ResetReaderMovesANameAndReturnsTheOldAndNewPositions") {
    test::TempDir t;
    write_records(t.queue(), 10);
    REQUIRE(create_reader(t.queue(), "r", Position::at_seq(2)).ok());
    auto rr = reset_reader(t.queue(), "r", Position::at_seq(7), false);
    REQUIRE_MESSAGE(rr.ok(), rr.status().message());
    CHECK(rr->old_position == 2);
    CHECK(rr->new_position == 7);
    auto s = inspect_reader(t.queue(), "r");
    REQUIRE(s.ok());
    CHECK(s->position == 7);
    CHECK(s->lag == 3);
    CHECK(next_seq_of(t.queue(), "r") == 7);

    rr = reset_reader(t.queue(), "r", Position::start(), false);
    REQUIRE(rr.ok());
    CHECK(rr->old_position == 7);
    CHECK(rr->new_position == 0);
    rr = reset_reader(t.queue(), "r", Position::end(), false);
    REQUIRE(rr.ok());
    CHECK(rr->old_position == 0);
    CHECK(rr->new_position == 10);
    s = inspect_reader(t.queue(), "r");
    REQUIRE(s.ok());
    CHECK(s->position == 10);
    CHECK(s->lag == 0);
}

TEST_CASE("AResetDryRunReportsTheMoveAndChangesNothing") {
    test::TempDir t;
    write_records(t.queue(), 10);
    REQUIRE(create_reader(t.queue(), "r", Position::at_seq(2)).ok());
    const auto files = test::list_dir(t.queue() + "/readers");
    const std::string before = test::file_bytes(cursor_file(t.queue(), "r"));
    auto rr = reset_reader(t.queue(), "r", Position::at_seq(7), true);
    REQUIRE_MESSAGE(rr.ok(), rr.status().message());
    CHECK(rr->old_position == 2);
    CHECK(rr->new_position == 7);
    CHECK(test::file_bytes(cursor_file(t.queue(), "r")) == before);
    CHECK(test::list_dir(t.queue() + "/readers") == files);
    auto s = inspect_reader(t.queue(), "r");
    REQUIRE(s.ok());
    CHECK(s->position == 2);
}

TEST_CASE("ResetReaderIsRefusedWhileAProcessHoldsTheName") {
    test::TempDir t;
    write_records(t.queue(), 10);
    REQUIRE(create_reader(t.queue(), "r", Position::at_seq(2)).ok());
    {
        ReaderOptions o;
        o.name = "r";
        o.create = false;
        auto held = Reader::open(t.queue(), o);
        REQUIRE(held.ok());
        for (bool dry_run : {true, false}) {
            CAPTURE(dry_run);
            auto rr = reset_reader(t.queue(), "r", Position::at_seq(7), dry_run);
            REQUIRE_FALSE(rr.ok());
            CHECK(rr.status().code() == errc::busy);
        }
        auto s = inspect_reader(t.queue(), "r");
        REQUIRE(s.ok());
        CHECK(s->position == 2);
    }
    auto rr = reset_reader(t.queue(), "r", Position::at_seq(7), false);
    REQUIRE_MESSAGE(rr.ok(), rr.status().message());
    CHECK(rr->old_position == 2);
}

TEST_CASE("ResetReaderRefusesAPositionPastTheHeadAndAMissingName") {
    test::TempDir t;
    write_records(t.queue(), 10);
    REQUIRE(create_reader(t.queue(), "r", Position::at_seq(2)).ok());
    const std::string before = test::file_bytes(cursor_file(t.queue(), "r"));
    for (bool dry_run : {true, false}) {
        CAPTURE(dry_run);
        auto rr = reset_reader(t.queue(), "r", Position::at_seq(11), dry_run);
        REQUIRE_FALSE(rr.ok());
        CHECK(rr.status().code() == errc::invalid_argument);
        auto missing = reset_reader(t.queue(), "nobody", Position::start(), dry_run);
        REQUIRE_FALSE(missing.ok());
        CHECK(missing.status().code() == errc::not_found);
    }
    CHECK(test::file_bytes(cursor_file(t.queue(), "r")) == before);
    CHECK(test::list_dir(t.queue() + "/readers") == std::vector<std::string>{"r.cursor"});
}

// ---- gc_readers ----------------------------------------------------------------------------

TEST_CASE("GcRemovesWhatDeadFollowersLeftAndKeepsTheNames") {
    test::TempDir t;
    write_records(t.queue(), 3);
    const std::string q = t.queue();
    Holder dead([&q] { return follow_named_and_anonymous(q, "mon"); });
    const pid_t pid = dead.pid();
    dead.kill();
    REQUIRE(create_reader(q, "keep", Position::start()).ok());
    std::ofstream(q + "/readers/.keep.cursor.12345.tmp") << "a cursor being written";
    std::ofstream(q + "/readers/orphan.efd") << "{}";  // a follower's, without its cursor
    // A live follower: none of its files is touched, however old.
    auto live = open_named(q, "live", Position::end());
    REQUIRE(drain(*live));
    auto armed = live->prepare_wait();
    REQUIRE(armed.ok());
    REQUIRE(armed.value());
    REQUIRE(exists(q + "/readers/live.efd"));
    age_reader_files(q, 60);

    std::vector<std::string> expect{"readers/.keep.cursor.12345.tmp", "readers/mon.efd",
                                    "readers/orphan.efd"};
    if (exists(q + "/readers/mon.fifo")) expect.push_back("readers/mon.fifo");  // linux notifier
    const auto anon = ephemeral_files_of(q, pid);
    REQUIRE(std::any_of(anon.begin(), anon.end(),
                        [](const std::string& f) { return f.ends_with(".cursor"); }));
    for (const auto& f : anon) expect.push_back("readers/" + f);
    expect = sorted(expect);
    const auto files = test::list_dir(q + "/readers");

    auto dry = gc_readers(q, 0, true);
    REQUIRE_MESSAGE(dry.ok(), dry.status().message());
    CHECK(sorted(dry.value()) == expect);
    CHECK(test::list_dir(q + "/readers") == files);  // a dry run removes nothing

    auto removed = gc_readers(q, 0, false);
    REQUIRE_MESSAGE(removed.ok(), removed.status().message());
    CHECK(sorted(removed.value()) == expect);
    std::vector<std::string> left{"keep.cursor", "live.cursor", "live.efd", "mon.cursor"};
    if (exists(q + "/readers/live.fifo")) left.push_back("live.fifo");
    CHECK(test::list_dir(q + "/readers") == sorted(left));
    auto rs = inspect_readers(q);
    REQUIRE(rs.ok());
    CHECK(names_of(rs.value()) == std::vector<std::string>{"keep", "live", "mon"});

    auto again = gc_readers(q, 0, false);
    REQUIRE(again.ok());
    CHECK(again->empty());
}

TEST_CASE("GcLeavesFilesChangedInTheLastTenSecondsAlone") {
    test::TempDir t;
    write_records(t.queue(), 3);
    const std::string q = t.queue();
    Holder dead([&q] { return follow_named_and_anonymous(q, "mon"); });
    dead.kill();
    std::ofstream(q + "/readers/.mon.cursor.12345.tmp") << "a cursor being written";
    REQUIRE(create_reader(q, "stale", Position::start()).ok());
    age_commit(q, "stale", 7200);
    const auto files = test::list_dir(q + "/readers");
    for (bool dry_run : {true, false}) {
        CAPTURE(dry_run);
        auto removed = gc_readers(q, 1, dry_run);  // even names stale after 1 ns
        REQUIRE_MESSAGE(removed.ok(), removed.status().message());
        CHECK(removed->empty());
        CHECK(test::list_dir(q + "/readers") == files);
    }
    // The same files, 11 seconds old: their owner had time to take their lock.
    age_reader_files(q, 11);
    auto removed = gc_readers(q, 1, false);
    REQUIRE(removed.ok());
    CHECK_FALSE(removed->empty());
    CHECK(test::list_dir(q + "/readers").empty());
}

TEST_CASE("GcRemovesNamesNobodyHoldsWhosePositionIsOlderThanStaleAfter") {
    test::TempDir t;
    write_records(t.queue(), 3);
    const std::string q = t.queue();
    REQUIRE(create_reader(q, "old", Position::start()).ok());
    REQUIRE(create_reader(q, "recent", Position::start()).ok());
    REQUIRE(create_reader(q, "held-old", Position::start()).ok());
    age_commit(q, "old", 7200);
    age_commit(q, "held-old", 7200);
    age_reader_files(q, 7200);
    ReaderOptions o;
    o.name = "held-old";
    o.create = false;
    auto held = Reader::open(q, o);
    REQUIRE(held.ok());
    const uint64_t hour = 3600ull * 1000000000ull;

    auto none = gc_readers(q, 0, false);  // 0: every name is kept
    REQUIRE(none.ok());
    CHECK(none->empty());

    auto dry = gc_readers(q, hour, true);
    REQUIRE(dry.ok());
    CHECK(dry.value() == std::vector<std::string>{"readers/old.cursor"});
    CHECK(exists(cursor_file(q, "old")));

    auto removed = gc_readers(q, hour, false);
    REQUIRE(removed.ok());
    CHECK(removed.value() == std::vector<std::string>{"readers/old.cursor"});
    CHECK(test::list_dir(q + "/readers") ==
          std::vector<std::string>{"held-old.cursor", "recent.cursor"});
}
