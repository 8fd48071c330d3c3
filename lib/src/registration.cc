// chronicle — a follower's wake registration, readers/<name>.efd (see registration.h).
#include "registration.h"

#include <unistd.h>

#include <cerrno>

#include <nlohmann/json.hpp>

#include "fs.h"
#include "json_fields.h"
#include "queue_files.h"

namespace chronicle {

std::string efd_to_json(const EfdInfo& e) {
    nlohmann::json j = {{"version", e.version},
                        {"name", e.name},
                        {"pid", e.pid},
                        {"fd", e.fd},
                        {"start_time", e.start_time},
                        {"eventfd_id", e.eventfd_id},
                        {"fifo", e.fifo},
                        {"cursor", e.cursor},
                        {"created_ns", e.created_ns},
                        {"ephemeral", e.ephemeral}};
    return j.dump() + "\n";
}

Status publish_efd(int readers_fd, std::string_view readers_path, const EfdInfo& e) {
    const std::string file = files::reader_file(e.name, files::ReaderFile::efd);
    return fs::write_file_atomic(readers_fd, readers_path, file, files::temp_name(file),
                                 efd_to_json(e));
}

Result<EfdInfo> efd_from_json(std::string_view text, std::string_view path) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    auto bad = [&](const char* why) {
        return Status(errc::corrupt, std::string(path) + ": unusable wake metadata: " + why);
    };
    if (!j.is_object()) return bad("not a JSON object");
    EfdInfo e;
    if (!json_fields::get_int(j, "version", e.version) || !json_fields::get_int(j, "pid", e.pid) ||
        !json_fields::get_int(j, "fd", e.fd) ||
        !json_fields::get_int(j, "start_time", e.start_time)) {
        return bad("version, pid, fd and start_time must be integers in range");
    }
    (void)json_fields::get_int(j, "eventfd_id",
                               e.eventfd_id);  // absent: 0 (refused where ids exist)
    (void)json_fields::get_int(j, "created_ns", e.created_ns);
    auto str = [&](const char* key, std::string& out) {
        return json_fields::get_string(j, key, out);
    };
    if (!str("name", e.name) || !str("cursor", e.cursor))
        return bad("name and cursor must be strings");
    if (j.contains("fifo") && !str("fifo", e.fifo)) return bad("fifo must be a string");
    if (auto it = j.find("ephemeral"); it != j.end()) {
        if (!it->is_boolean()) return bad("ephemeral must be true or false");
        e.ephemeral = it->get<bool>();
    }
    if (e.version != 1) return bad("unsupported version");
    if (e.pid <= 0 || e.fd < -1) return bad("bad pid or fd");  // -1: no eventfd (portable)
    // The files it names must be this reader's own, in readers/: no path tricks.
    if (e.cursor != files::reader_file(e.name, files::ReaderFile::cursor)) {
        return bad("cursor is not this reader's cursor file");
    }
    if (!e.fifo.empty() && e.fifo != files::reader_file(e.name, files::ReaderFile::fifo)) {
        return bad("fifo is not this reader's FIFO");
    }
    if (e.name.empty() || e.name.find('/') != std::string::npos || e.name[0] == '.') {
        return bad("bad name");
    }
    return e;
}

Status remove_registration(int readers_fd, std::string_view name) {
    Status first;
    for (files::ReaderFile kind : {files::ReaderFile::efd, files::ReaderFile::fifo}) {
        if (::unlinkat(readers_fd, files::reader_file(name, kind).c_str(), 0) != 0 &&
            errno != ENOENT && first.ok()) {
            first = Status::from_errno(errno, "cannot remove", files::reader_file(name, kind));
        }
    }
    return first;
}

}  // namespace chronicle
