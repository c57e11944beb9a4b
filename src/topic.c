/*
 * Publish/subscribe. Not built yet: until it is, every pub/sub message is refused with
 * an error that says so, and HTTP publishing answers 501.
 */
#include "tickwire/topic.h"

#include <stdio.h>
#include <string.h>

#include "tickwire/frame.h"
#include "tickwire/server.h"

void tw_topic_on_message(struct tw_worker *w, tw_conn *c, const tw_msg *m)
{
        char buf[160];
        size_t n = tw_proto_error(buf, sizeof(buf), "unknown_type",
                                  "publish/subscribe is not available in this build");
        tw_frame *f = tw_frame_ws(TW_WS_OP_TEXT, buf, n);

        (void)m;
        if (f)
                tw_conn_send(w, c, f);
}

int tw_topic_http_publish(struct tw_worker *w, tw_span topic, const char *body, size_t len,
                          char *out, size_t cap, size_t *out_len)
{
        int n = snprintf(out, cap, "{\"error\":\"not implemented\"}");

        (void)w, (void)topic, (void)body, (void)len;
        *out_len = n > 0 ? (size_t)n : 0;
        return 501;
}

void tw_topic_conn_gone(struct tw_worker *w, tw_conn *c)
{
        (void)w, (void)c;
}

void tw_topic_drain_inbox(struct tw_worker *w)
{
        (void)w;
}
