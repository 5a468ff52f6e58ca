// libFuzzer target: the guest HTTP request parser must never read outside its
// input, and whatever it accepts must be self-consistent.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "wisp/http_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // An exact-size heap copy so ASan sees any read past the end.
    std::vector<char> buf(data, data + size);
    wisp_http_header headers[32];
    wisp_http_parse_limits limits{4096, 1 << 20, 32};
    wisp_http_request req;
    size_t head_len = 0;
    int status = 0;
    auto r = wisp_http_parse_head(buf.data(), buf.size(), &limits, headers, &req, &head_len, &status);
    if (r == WISP_HTTP_PARSE_DONE) {
        if (head_len > size || req.header_count > 32 || req.content_length > limits.max_body_bytes)
            abort();
        const char *end = buf.data() + head_len;
        // The path points into the head, except "/" for an absolute-form target
        // without one.
        bool root = req.path_len == 1 && req.path[0] == '/';
        if (!root && (req.path < buf.data() || req.path + req.path_len > end)) abort();
        for (size_t i = 0; i < req.header_count; i++)
            if (headers[i].value + headers[i].value_len > end) abort();
    } else if (r == WISP_HTTP_PARSE_ERROR) {
        if (status < 400 || status > 505) abort();
    }
    return 0;
}
