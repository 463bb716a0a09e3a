// `npm run bench` (scripts/bench/mod.mjs; see there). Kept at this path, which the docs and results name.

import "./bench/mod.mjs";
