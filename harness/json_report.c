/* Placeholder until the JSON writer lands in this session. */
#include "json_report.h"
