'use strict';
// No side effects: gradcomp's loader requires this file, checks `abi`, then loads bindingPath.
const path = require('node:path');
const pkg = require('./package.json');

module.exports = {
  bindingPath: path.join(__dirname, 'gradcomp_cuda.node'),
  version: pkg.version,
  abi: pkg.config.abi,
};
