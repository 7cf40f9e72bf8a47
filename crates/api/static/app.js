// SecureEHR's only script: installs the service worker (sw.js) that lets the app open
// offline on its "needs a connection" page. Every page works without it.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch(() => {
    // Without it the pages still work; there is just no offline page.
  });
}
