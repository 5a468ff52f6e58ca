// The one error type of wisp's host code: a [[nodiscard]] result carrying an errno
// value and a message. No exceptions cross module boundaries; no bool-plus-log.
#pragma once

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace wisp {

struct Error {
    int code = EINVAL;    // an errno value (EINVAL for validation failures)
    std::string message;  // what failed, with the context a reader needs

    // "message: strerror(code)"
    std::string describe() const { return message + ": " + std::strerror(code); }
};

// An Error built from the current errno, for a failed system call.
inline Error errno_error(std::string message) { return Error{errno, std::move(message)}; }

// A validation failure (EINVAL unless given).
inline Error invalid(std::string message, int code = EINVAL) {
    return Error{code, std::move(message)};
}

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T &value() & { return std::get<0>(v_); }
    const T &value() const & { return std::get<0>(v_); }
    T &&value() && { return std::get<0>(std::move(v_)); }
    T &operator*() & { return value(); }
    const T &operator*() const & { return value(); }
    T *operator->() { return &value(); }
    const T *operator->() const { return &value(); }

    const Error &error() const & { return std::get<1>(v_); }
    Error &&error() && { return std::get<1>(std::move(v_)); }

private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)) {}

    bool ok() const { return !error_.has_value(); }
    explicit operator bool() const { return ok(); }
    const Error &error() const & { return *error_; }
    Error &&error() && { return std::move(*error_); }

private:
    std::optional<Error> error_;
};

using Status = Result<void>;

}  // namespace wisp

// Propagate the error of a Result-returning expression.
#define WISP_RETURN_IF_ERROR(expr)                       \
    do {                                                 \
        auto wisp_status_ = (expr);                      \
        if (!wisp_status_) return std::move(wisp_status_).error(); \
    } while (0)
