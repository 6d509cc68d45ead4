#!/bin/sh
# Air-gap workflow end to end: export what scripts/examples/airgap.yaml
# selects from SOURCE into one archive, then import it into SITE, as the two
# sides of an air gap would (here both run on one machine).
#
#   SOURCE=host:port SITE=host:port SIGNING_KEY=cosign.pub \
#       scripts/examples/airgap.sh [WORKDIR]
#
# Exit status: export's if it wrote nothing, else import's.
set -eu
: "${SOURCE:?set SOURCE=host:port}" "${SITE:?set SITE=host:port}"
FREIGHTLINER=${FREIGHTLINER:-freightliner}
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-.}
archive="$work/site.tar"

# connected side: 1 when verify: left an unsigned image out; the archive is
# still written then, with what passed
status=0
"$FREIGHTLINER" export --config "$here/airgap.yaml" --to "oci-archive:$archive" --no-progress || status=$?
[ -f "$archive" ] || exit "$status"

# isolated side: every image by the digest the archive records
"$FREIGHTLINER" import "$archive" --destination "$SITE" --dest-prefix mirror \
    --verify-key "${SIGNING_KEY:-cosign.pub}" --no-progress
