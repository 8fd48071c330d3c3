// chronicle — error reporting.
//
// The library never throws for runtime conditions (a full disk, a busy writer, a malformed
// file). Every fallible call returns a Status, or a Result<T> that holds a value or a Status.
// A Status carries a category (errc, which tools map to exit codes), the errno that caused it
// (0 if none) and a message that already names the file, reader or pid involved.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "chronicle/export.h"

namespace chronicle {

// Categories of failure. Tools map each to one exit code (see docs/DESIGN.md, "Exit codes").
enum class errc : int {
    ok = 0,
    invalid_argument,  // bad option, bad reader name, bad sequence
    not_found,         // queue, segment or reader does not exist
    busy,              // the writer lock or a reader name is held by another process
    no_space,          // ENOSPC / EDQUOT while growing the queue
    too_large,         // record larger than the queue's maximum payload
    corrupt,           // a file in the queue directory is malformed
    timeout,           // a wait ran out of time
    io_error,          // any other system call failure
    expired,           // the requested position is no longer retained
    closed,            // the writer went away while waiting (wait() only)
};

CHRONICLE_API const char* errc_name(errc c) noexcept;

class [[nodiscard]] CHRONICLE_API Status {
  public:
    Status() = default;
    Status(errc code, std::string message, int sys_errno = 0)
        : code_(code),
          sys_errno_(sys_errno),
          message_(std::make_unique<std::string>(std::move(message))) {}
    Status(const Status& o)
        : code_(o.code_),
          sys_errno_(o.sys_errno_),
          message_(o.message_ ? std::make_unique<std::string>(*o.message_) : nullptr) {}
    Status& operator=(const Status& o) {
        if (this != &o) *this = Status(o);
        return *this;
    }
    Status(Status&&) noexcept = default;
    Status& operator=(Status&&) noexcept = default;
    ~Status() = default;

    // errno -> Status in exactly one place: "<what> <path>: <strerror>", category by errno.
    static Status from_errno(int err, std::string_view what, std::string_view path);

    [[nodiscard]] bool ok() const noexcept { return code_ == errc::ok; }
    [[nodiscard]] errc code() const noexcept { return code_; }
    [[nodiscard]] int sys_errno() const noexcept { return sys_errno_; }
    [[nodiscard]] const std::string& message() const noexcept {
        static const std::string kEmpty;
        return message_ ? *message_ : kEmpty;
    }
    explicit operator bool() const noexcept { return ok(); }

  private:
    errc code_ = errc::ok;
    int sys_errno_ = 0;
    // Null when ok: an OK status costs two words and no allocation (hot paths return one
    // per record).
    std::unique_ptr<std::string> message_;
};

// A value or the Status saying why there is none.
template <class T>
class [[nodiscard]] Result {
  public:
    Result(T value) : value_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
    Result(Status status) : status_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

    [[nodiscard]] bool ok() const noexcept { return value_.has_value(); }
    explicit operator bool() const noexcept { return ok(); }
    [[nodiscard]] const Status& status() const noexcept { return status_; }
    T& value() & { return *value_; }
    const T& value() const& { return *value_; }
    T&& value() && { return std::move(*value_); }
    T* operator->() { return &*value_; }
    const T* operator->() const { return &*value_; }
    T& operator*() & { return *value_; }

  private:
    std::optional<T> value_;
    Status status_;
};

}  // namespace chronicle
