// The folder holding this Node's headers (include/node/node_api.h) on this machine, so node-gyp and
// prebuild never download them: npm_config_nodedir if set, else the prefix of the running node
// (/usr for Debian's nodejs, the install prefix of an official tarball), else /usr.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

module.exports = function nodedir() {
  const candidates = [process.env.npm_config_nodedir, path.resolve(path.dirname(process.execPath), '..'), '/usr', '/usr/local'].filter(Boolean);
  const hit = candidates.find((d) => fs.existsSync(path.join(d, 'include', 'node', 'node_api.h')));
  if (!hit) {
    throw new Error(`gradcomp: the headers of Node ${process.version} were not found (looked for include/node/node_api.h under ${candidates.join(', ')}); ` +
      'install them (Debian: apt-get install libnode-dev) or set npm_config_nodedir to the folder that has them');
  }
  return hit;
};
