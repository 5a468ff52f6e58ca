// kv: an in-memory key-value store over HTTP, with a hard memory budget - the
// stateful example (its data survives scale-to-zero in a stateful snapshot).
//
//   PUT    /kv/<key>   body = value      -> 201 Created (new) / 204 (replaced)
//   GET    /kv/<key>                     -> 200 value / 404
//   DELETE /kv/<key>                     -> 204 / 404
//   GET    /kv                           -> JSON: keys, bytes used, budget
//   GET    /_wisp/stats
//
// Keys are 1..256 bytes of the path as sent. The store never holds more than
// kv_max_bytes (default 16M) of keys, values and per-entry overhead; a PUT that
// would exceed it gets 507 Insufficient Storage naming the numbers. Values are
// at most kv_max_value bytes (default 1M; larger PUTs get 413 from the helper).
// Written in freestanding C++ (new/delete over the runtime's malloc).
#include <new>
#include <stdio.h>
#include <string.h>

#include "wisp/guest.h"
#include "wisp/http.h"
#include "wisp/net.h"

namespace {

constexpr size_t kMaxKey = 256;

uint64_t hash_bytes(const char *data, size_t len) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (size_t i = 0; i < len; i++) h = (h ^ static_cast<unsigned char>(data[i])) * 1099511628211ull;
    return h;
}

class Store {
public:
    enum class PutResult { Created, Replaced, Full, NoMemory };

    explicit Store(size_t max_bytes) : max_bytes_(max_bytes) {}

    PutResult put(const char *key, size_t key_len, const char *value, size_t value_len) {
        uint64_t h = hash_bytes(key, key_len);
        Entry **slot = find_slot(h, key, key_len);
        size_t old_cost = *slot ? cost((*slot)->key_len, (*slot)->value_len) : 0;
        size_t new_cost = cost(key_len, value_len);
        if (bytes_used_ - old_cost + new_cost > max_bytes_) return PutResult::Full;
        Entry *e = Entry::make(h, key, key_len, value, value_len);
        if (!e) return PutResult::NoMemory;
        bytes_used_ += new_cost;
        if (*slot) {
            Entry *old = *slot;
            e->next = old->next;
            *slot = e;
            bytes_used_ -= old_cost;
            Entry::destroy(old);
            return PutResult::Replaced;
        }
        *slot = e;
        count_++;
        if (count_ > bucket_count_ * 3 / 4) grow();
        return PutResult::Created;
    }

    // The value, or nullptr; valid until the next put/erase of that key.
    const char *get(const char *key, size_t key_len, size_t *value_len) {
        Entry **slot = find_slot(hash_bytes(key, key_len), key, key_len);
        if (!*slot) return nullptr;
        *value_len = (*slot)->value_len;
        return (*slot)->value();
    }

    bool erase(const char *key, size_t key_len) {
        Entry **slot = find_slot(hash_bytes(key, key_len), key, key_len);
        if (!*slot) return false;
        Entry *e = *slot;
        *slot = e->next;
        bytes_used_ -= cost(e->key_len, e->value_len);
        count_--;
        Entry::destroy(e);
        return true;
    }

    size_t count() const { return count_; }
    size_t bytes_used() const { return bytes_used_; }
    size_t max_bytes() const { return max_bytes_; }

private:
    // Key and value live in the same allocation, right after the entry.
    struct Entry {
        Entry *next;
        uint64_t hash;
        size_t key_len, value_len;
        char *key() { return reinterpret_cast<char *>(this + 1); }
        char *value() { return key() + key_len; }

        static Entry *make(uint64_t h, const char *k, size_t kl, const char *v, size_t vl) {
            void *mem = ::operator new(sizeof(Entry) + kl + vl, std::nothrow);
            if (!mem) return nullptr;
            Entry *e = new (mem) Entry{nullptr, h, kl, vl};
            memcpy(e->key(), k, kl);
            memcpy(e->value(), v, vl);
            return e;
        }
        static void destroy(Entry *e) { ::operator delete(e); }
    };

    static size_t cost(size_t key_len, size_t value_len) { return sizeof(Entry) + key_len + value_len; }

    Entry **find_slot(uint64_t h, const char *key, size_t key_len) {
        if (!buckets_) grow();
        Entry **slot = &buckets_[h & (bucket_count_ - 1)];
        while (*slot && !((*slot)->hash == h && (*slot)->key_len == key_len &&
                          memcmp((*slot)->key(), key, key_len) == 0))
            slot = &(*slot)->next;
        return slot;
    }

    void grow() {
        size_t count = bucket_count_ ? bucket_count_ * 2 : 64;
        Entry **buckets = new (std::nothrow) Entry *[count]();
        if (!buckets) return;  // keep the old table: slower chains, still correct
        for (size_t i = 0; i < bucket_count_; i++) {
            for (Entry *e = buckets_[i]; e;) {
                Entry *next = e->next;
                Entry **slot = &buckets[e->hash & (count - 1)];
                e->next = *slot;
                *slot = e;
                e = next;
            }
        }
        delete[] buckets_;
        buckets_ = buckets;
        bucket_count_ = count;
    }

    Entry **buckets_ = nullptr;
    size_t bucket_count_ = 0;
    size_t count_ = 0;
    size_t bytes_used_ = 0;
    size_t max_bytes_;
};

Store *g_store;

void respond_summary(wisp_http_response *res) {
    char text[160];
    int n = snprintf(text, sizeof text, "{\"keys\":%zu,\"bytes_used\":%zu,\"max_bytes\":%zu}\n",
                     g_store->count(), g_store->bytes_used(), g_store->max_bytes());
    wisp_http_respond(res, 200, "application/json", text, static_cast<size_t>(n));
}

void handle(void *, const wisp_http_request *req, wisp_http_response *res) {
    if (wisp_http_path_is(req, "/kv") || wisp_http_path_is(req, "/kv/")) {
        if (wisp_http_allow(req, res, "GET")) respond_summary(res);
        return;
    }
    const char *key;
    size_t key_len;
    if (!wisp_http_path_has_prefix(req, "/kv/", &key, &key_len)) {
        wisp_http_respond_error(res, 404, nullptr);
        return;
    }
    if (key_len > kMaxKey) {
        wisp_http_respond_error(res, 414, "keys are at most 256 bytes");
        return;
    }
    if (!wisp_http_allow(req, res, "GET, PUT, DELETE")) return;
    if (wisp_http_is_get(req)) {
        size_t len = 0;
        const char *value = g_store->get(key, key_len, &len);
        if (!value) {
            wisp_http_respond_error(res, 404, "no such key");
            return;
        }
        // A copy: a later PUT or DELETE may free the entry while this response is sent.
        wisp_http_respond(res, 200, "application/octet-stream", value, len);
    } else if (wisp_http_method_is(req, "PUT")) {
        switch (g_store->put(key, key_len, req->body, req->body_len)) {
        case Store::PutResult::Created: wisp_http_respond(res, 201, "text/plain", "created\n", 8); break;
        case Store::PutResult::Replaced: wisp_http_respond(res, 204, nullptr, "", 0); break;
        case Store::PutResult::Full: {
            char detail[160];
            snprintf(detail, sizeof detail,
                     "kv store full: %zu of %zu bytes used, this entry needs %zu more",
                     g_store->bytes_used(), g_store->max_bytes(), key_len + req->body_len);
            wisp_http_respond_error(res, 507, detail);
            break;
        }
        case Store::PutResult::NoMemory: wisp_http_respond_error(res, 503, "guest out of memory"); break;
        }
    } else if (g_store->erase(key, key_len)) {  // DELETE
        wisp_http_respond(res, 204, nullptr, "", 0);
    } else {
        wisp_http_respond_error(res, 404, "no such key");
    }
}

}  // namespace

int main() {
    uint64_t max_bytes = wisp_cmdline_u64("kv_max_bytes", 16u << 20);
    uint64_t max_value = wisp_cmdline_u64("kv_max_value", 1u << 20);
    uint64_t port = wisp_cmdline_u64("port", 80);
    if (port == 0 || port > 65535) wisp_abort("kv: port must be 1..65535");
    g_store = new Store(max_bytes);
    wisp_net_init();
    wisp_http_config cfg{};
    cfg.port = static_cast<uint16_t>(port);
    cfg.handler = handle;
    cfg.max_body_bytes = max_value;
    cfg.stats_path = "/_wisp/stats";
    if (wisp_http_serve(&cfg) != 0) wisp_abort("kv: cannot listen");
    printf("kv: listening on port %u, budget %llu bytes, values up to %llu bytes\n",
           static_cast<unsigned>(port), static_cast<unsigned long long>(max_bytes),
           static_cast<unsigned long long>(max_value));
    wisp_ready();
    wisp_net_run();
}
