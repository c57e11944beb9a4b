/*
 * assets — the web files built into the binary (src/js: the client library and the demo
 * page), served by the endpoints module at GET /<name> and GET / (index.html).
 *
 * Owns: the table CMake generates from src/js at build time (cmake/embed.cmake): bytes,
 * content type and an ETag (the file's SHA-1) per file, so a rebuild serves what is in
 * the tree and browsers revalidate cheaply. Read-only; no allocation.
 */
#ifndef TICKWIRE_ASSETS_H
#define TICKWIRE_ASSETS_H

#include <stddef.h>

#include "tickwire/span.h"

typedef struct tw_asset {
        const char *path;  /* "/tickwire.js" */
        const char *ctype; /* Content-Type */
        const unsigned char *data;
        size_t len;
        const char *etag; /* quoted, as it goes in the header */
} tw_asset;

extern const tw_asset tw_assets[];
extern const size_t tw_nassets;

/* The file served at `path` ("/" is /index.html), or NULL. */
const tw_asset *tw_asset_find(tw_span path);

#endif
