/*
 * Looking up the built-in web files (the table itself is generated: cmake/embed.cmake).
 */
#include "tickwire/assets.h"

#include <string.h>

const tw_asset *tw_asset_find(tw_span path)
{
        if (path.n == 1 && path.p[0] == '/')
                path = (tw_span){"/index.html", 11};
        for (size_t i = 0; i < tw_nassets; i++)
                if (strlen(tw_assets[i].path) == path.n &&
                    memcmp(tw_assets[i].path, path.p, path.n) == 0)
                        return &tw_assets[i];
        return NULL;
}
