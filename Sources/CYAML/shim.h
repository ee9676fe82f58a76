// libyaml (Debian libyaml-dev / libyaml-0-2): the C parser Yams wraps, used directly so that
// reading a profile pulls in no Foundation internationalisation (ICU) at all.
#include <yaml.h>
