// Package interop checks getty's WebSocket transport against peers getty
// did not write: the ws package for Node.js as a client and as a server,
// and headless Chromium (a page's WebSocket, and the chat example used as a
// person would). The tests skip unless GETTY_INTEROP is set; run them with
// `make interop`, which installs the Node packages first (see README.md).
package interop
