/* Placeholder until the HTML writer lands in this session. */
#include "html_report.h"
