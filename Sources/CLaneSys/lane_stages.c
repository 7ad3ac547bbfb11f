#include "lane_stages.h"

#include <stddef.h>

const char *lane_stage_name(int stage) {
    switch (stage) {
#define LANE_STAGE_CASE_(id, number, name) case number: return name;
        LANE_STAGE_LIST(LANE_STAGE_CASE_)
#undef LANE_STAGE_CASE_
    default: return NULL;
    }
}
