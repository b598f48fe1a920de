/*
 * broker/amqp_codec.h -- AMQP 0-9-1 wire codec: frames, primitive types,
 * field tables (RabbitMQ's field types), content headers.
 *
 * Decoding is zero copy: decoded strings and tables point into the caller's
 * buffer and live as long as it does. Every decoder is bounded by the length
 * it is given and reports malformed input as a negative AMQP_E_* code; no
 * byte string makes it crash or read outside its buffer.
 *
 * Encoding writes into a caller-owned amqp_wr_t. An overflow sets w->err
 * (sticky) and stops writing, so a sequence of writes needs one check at the
 * end.
 */
#ifndef CHAOSLAB_BROKER_AMQP_CODEC_H
#define CHAOSLAB_BROKER_AMQP_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* The protocol header a client sends first; the server answers a wrong one
 * with this same header and closes (AMQP 0-9-1 section 4.2.2). */
#define AMQP_PROTOCOL_HEADER "AMQP\x00\x00\x09\x01"
#define AMQP_PROTOCOL_HEADER_SIZE 8u

enum amqp_frame_type {
    AMQP_FRAME_METHOD = 1,
    AMQP_FRAME_HEADER = 2,
    AMQP_FRAME_BODY = 3,
    AMQP_FRAME_HEARTBEAT = 8,
};

#define AMQP_FRAME_END 0xCEu
#define AMQP_FRAME_HEADER_SIZE 7u   /* type u8, channel u16, size u32 */
#define AMQP_FRAME_OVERHEAD_SIZE 8u /* header + end octet */
/* frame_max counts the whole frame, header and end octet included. */
#define AMQP_FRAME_MIN_SIZE 4096u
#define AMQP_FRAME_MAX_DEFAULT 131072u /* also the hard cap we accept */
/* Nested tables/arrays deeper than this are rejected (bounds recursion). */
#define AMQP_TABLE_DEPTH_MAX 16u
#define AMQP_SHORTSTR_SIZE_MAX 255u

/* Reply codes (AMQP 0-9-1 constants). */
enum amqp_reply_code {
    AMQP_REPLY_SUCCESS = 200,
    AMQP_REPLY_CONTENT_TOO_LARGE = 311,
    AMQP_REPLY_NO_ROUTE = 312,
    AMQP_REPLY_NO_CONSUMERS = 313,
    AMQP_REPLY_CONNECTION_FORCED = 320,
    AMQP_REPLY_INVALID_PATH = 402,
    AMQP_REPLY_ACCESS_REFUSED = 403,
    AMQP_REPLY_NOT_FOUND = 404,
    AMQP_REPLY_RESOURCE_LOCKED = 405,
    AMQP_REPLY_PRECONDITION_FAILED = 406,
    AMQP_REPLY_FRAME_ERROR = 501,
    AMQP_REPLY_SYNTAX_ERROR = 502,
    AMQP_REPLY_COMMAND_INVALID = 503,
    AMQP_REPLY_CHANNEL_ERROR = 504,
    AMQP_REPLY_UNEXPECTED_FRAME = 505,
    AMQP_REPLY_RESOURCE_ERROR = 506,
    AMQP_REPLY_NOT_ALLOWED = 530,
    AMQP_REPLY_NOT_IMPLEMENTED = 540,
    AMQP_REPLY_INTERNAL_ERROR = 541,
};

/* Codec errors: negative, below the IO_E* range of broker/io.h. */
enum {
    AMQP_E_NOSPACE = -101,        /* writer buffer too small */
    AMQP_E_SYNTAX = -102,         /* truncated/malformed arguments or table */
    AMQP_E_UNKNOWN_CLASS = -103,  /* class id not in the spec */
    AMQP_E_UNKNOWN_METHOD = -104, /* known class, unknown method id */
    AMQP_E_FRAME_END = -105,      /* frame end octet is not 0xCE */
    AMQP_E_FRAME_SIZE = -106,     /* frame larger than frame_max */
    AMQP_E_FRAME_TYPE = -107,     /* unknown frame type */
    AMQP_E_DEPTH = -108,          /* table nesting > AMQP_TABLE_DEPTH_MAX */
};

/* A byte string (shortstr, longstr, byte array). Not NUL-terminated. */
typedef struct amqp_bytes {
    const uint8_t *ptr;
    size_t len;
} amqp_bytes_t;

/* An encoded field table or field array: the entries without the u32 length
 * prefix. {NULL, 0} is the empty table. Always validated when decoded. */
typedef struct amqp_table {
    const uint8_t *ptr;
    size_t len;
} amqp_table_t;

/* Bytes of a NUL-terminated C string (static or caller-owned). */
amqp_bytes_t amqp_cstr(const char *s);
/* 1 if `b` equals the C string `s`. */
int amqp_bytes_eq(amqp_bytes_t b, const char *s);

/* ---- reader ---------------------------------------------------------- */

/* A bounded reader. On a short read `err` becomes AMQP_E_SYNTAX (sticky),
 * reads return 0 / empty, and `pos` stops moving. */
typedef struct amqp_rd {
    const uint8_t *p;
    size_t len;
    size_t pos;
    int err;
} amqp_rd_t;

void amqp_rd_init(amqp_rd_t *r, const uint8_t *p, size_t len);
uint8_t amqp_rd_u8(amqp_rd_t *r);
uint16_t amqp_rd_u16(amqp_rd_t *r);
uint32_t amqp_rd_u32(amqp_rd_t *r);
uint64_t amqp_rd_u64(amqp_rd_t *r);
amqp_bytes_t amqp_rd_bytes(amqp_rd_t *r, size_t n);
amqp_bytes_t amqp_rd_shortstr(amqp_rd_t *r);
amqp_bytes_t amqp_rd_longstr(amqp_rd_t *r);
/* A u32-prefixed field table, validated; malformed sets err. */
amqp_table_t amqp_rd_table(amqp_rd_t *r);

/* ---- writer ---------------------------------------------------------- */

/* A bounded writer over caller-owned memory. On overflow `err` becomes
 * AMQP_E_NOSPACE (sticky) and nothing more is written. */
typedef struct amqp_wr {
    uint8_t *p;
    size_t cap;
    size_t len;
    int err;
} amqp_wr_t;

void amqp_wr_init(amqp_wr_t *w, uint8_t *p, size_t cap);
void amqp_wr_u8(amqp_wr_t *w, uint8_t v);
void amqp_wr_u16(amqp_wr_t *w, uint16_t v);
void amqp_wr_u32(amqp_wr_t *w, uint32_t v);
void amqp_wr_u64(amqp_wr_t *w, uint64_t v);
void amqp_wr_bytes(amqp_wr_t *w, const void *p, size_t n);
/* A shortstr longer than 255 bytes sets err = AMQP_E_SYNTAX. */
void amqp_wr_shortstr(amqp_wr_t *w, amqp_bytes_t s);
void amqp_wr_longstr(amqp_wr_t *w, amqp_bytes_t s);
/* An already encoded table (u32 length + entries). */
void amqp_wr_table(amqp_wr_t *w, amqp_table_t t);

/* ---- field tables ---------------------------------------------------- */

/* One field value. Integers of every width land in `i` (signed kinds) or
 * `u` (unsigned kinds, 't' and 'T'); 'S' and 'x' in `bytes`; 'F' and 'A' in
 * `table` (encoded, iterate again); 'V' carries nothing. */
typedef struct amqp_field {
    uint8_t kind; /* one of "tbBsuIiLlfdDSxATFV" */
    union {
        int64_t i;
        uint64_t u;
        float f32;
        double f64;
        struct {
            uint8_t scale;
            uint32_t value;
        } decimal;
        amqp_bytes_t bytes;
        amqp_table_t table;
    } v;
} amqp_field_t;

/* Check that t is a well-formed table (is_array=0) or array (1) whose nesting
 * (t itself counting as `depth`) stays <= AMQP_TABLE_DEPTH_MAX. Returns 0,
 * AMQP_E_SYNTAX or AMQP_E_DEPTH. */
int amqp_table_validate(amqp_table_t t, int is_array, unsigned depth);

/* Iterate a validated table or array. next() returns 1 with an entry, 0 at
 * the end, AMQP_E_SYNTAX if the bytes are malformed. Arrays give no key. */
typedef struct amqp_table_iter {
    amqp_rd_t r;
    int is_array;
} amqp_table_iter_t;

void amqp_table_iter_init(amqp_table_iter_t *it, amqp_table_t t, int is_array);
int amqp_table_next(amqp_table_iter_t *it, amqp_bytes_t *key, amqp_field_t *val);

/* Find `key` in table t; returns 1 and fills *val, 0 if absent, <0 if bad. */
int amqp_table_get(amqp_table_t t, const char *key, amqp_field_t *val);

/* Building a table: mark = begin(); key/value pairs; end(mark) patches the
 * u32 length. Nest by calling begin/end inside a value of kind 'F' or 'A'
 * (write the kind octet with amqp_wr_u8 first). */
size_t amqp_wr_table_begin(amqp_wr_t *w);
void amqp_wr_table_end(amqp_wr_t *w, size_t mark);
/* Kind octet + value; for 'F'/'A' the value's table is copied as is. */
void amqp_wr_field(amqp_wr_t *w, const amqp_field_t *val);
void amqp_wr_field_bool(amqp_wr_t *w, const char *key, int b);
void amqp_wr_field_str(amqp_wr_t *w, const char *key, const char *s);

/* ---- frames ---------------------------------------------------------- */

typedef struct amqp_frame {
    uint8_t type;
    uint16_t channel;
    uint32_t size;          /* payload bytes */
    const uint8_t *payload; /* points into the parsed buffer */
} amqp_frame_t;

/*
 * Parse one frame from the front of buf[0..len). Returns the frame's total
 * size (> 0) and fills *out; 0 if more bytes are needed; AMQP_E_FRAME_SIZE as
 * soon as the header announces a frame larger than frame_max (so the caller
 * never buffers it); AMQP_E_FRAME_TYPE for an unknown type; AMQP_E_FRAME_END
 * for a bad end octet.
 */
int amqp_frame_parse(const uint8_t *buf, size_t len, uint32_t frame_max,
                     amqp_frame_t *out);

/* Start a frame (size patched later); returns the mark for end(). */
size_t amqp_wr_frame_begin(amqp_wr_t *w, uint8_t type, uint16_t channel);
void amqp_wr_frame_end(amqp_wr_t *w, size_t mark);

/* ---- content header (class basic) ----------------------------------- */

enum amqp_basic_prop_flag {
    AMQP_PROP_CONTENT_TYPE = 1u << 15,
    AMQP_PROP_CONTENT_ENCODING = 1u << 14,
    AMQP_PROP_HEADERS = 1u << 13,
    AMQP_PROP_DELIVERY_MODE = 1u << 12,
    AMQP_PROP_PRIORITY = 1u << 11,
    AMQP_PROP_CORRELATION_ID = 1u << 10,
    AMQP_PROP_REPLY_TO = 1u << 9,
    AMQP_PROP_EXPIRATION = 1u << 8,
    AMQP_PROP_MESSAGE_ID = 1u << 7,
    AMQP_PROP_TIMESTAMP = 1u << 6,
    AMQP_PROP_TYPE = 1u << 5,
    AMQP_PROP_USER_ID = 1u << 4,
    AMQP_PROP_APP_ID = 1u << 3,
    AMQP_PROP_CLUSTER_ID = 1u << 2,
};

/* Basic properties; a field is meaningful only when its flag is set. */
typedef struct amqp_basic_props {
    uint16_t flags;
    amqp_bytes_t content_type;
    amqp_bytes_t content_encoding;
    amqp_table_t headers;
    uint8_t delivery_mode;
    uint8_t priority;
    amqp_bytes_t correlation_id;
    amqp_bytes_t reply_to;
    amqp_bytes_t expiration;
    amqp_bytes_t message_id;
    uint64_t timestamp;
    amqp_bytes_t type;
    amqp_bytes_t user_id;
    amqp_bytes_t app_id;
    amqp_bytes_t cluster_id;
} amqp_basic_props_t;

typedef struct amqp_content_header {
    uint16_t class_id;
    uint16_t weight;
    uint64_t body_size;
    amqp_basic_props_t props;
} amqp_content_header_t;

/* Decode/encode the property list alone (flag word + present properties),
 * the form a backend may store; same errors as the header decoder. */
int amqp_basic_props_decode(const uint8_t *p, size_t len, amqp_basic_props_t *out);
void amqp_basic_props_encode(amqp_wr_t *w, const amqp_basic_props_t *pr);

/* Decode a content header frame payload. Returns 0 or AMQP_E_SYNTAX
 * (truncated, trailing bytes, a flag word continuation, a reserved flag). */
int amqp_content_header_decode(const uint8_t *p, size_t len,
                               amqp_content_header_t *out);
/* Append a content header payload (no frame envelope). */
void amqp_content_header_encode(amqp_wr_t *w, const amqp_content_header_t *h);

#endif /* CHAOSLAB_BROKER_AMQP_CODEC_H */
