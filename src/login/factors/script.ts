/**
 * The one script of the hosted pages, served at `/_mezu/webauthn.js` and
 * loaded only by pages with a passkey form, through a per-response CSP nonce
 * (`script-src 'nonce-…'`: nothing else, inline or from the application on
 * the same host, may run). It runs the WebAuthn ceremony the server's options
 * describe (`data-options` on a `form[data-webauthn]`) with
 * `navigator.credentials.create` or `.get`, puts the browser's answer in the
 * form's `credential` field as JSON (base64url for the binary members, the
 * shape of W3C WebAuthn Level 3's `toJSON()`), and submits the form as any
 * other: the CSRF token, the session and the edge's checks stay those of a
 * plain form post, and no fetch is needed (the CSP allows no `connect-src`).
 * Without JavaScript or WebAuthn the passkey forms say so; the other forms
 * work as before.
 */
export const WEBAUTHN_SCRIPT = `'use strict';
(function () {
  function toBuf(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s), u = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
    return u.buffer;
  }
  function toB64u(b) {
    var u = new Uint8Array(b), s = '';
    for (var i = 0; i < u.length; i++) s += String.fromCharCode(u[i]);
    return btoa(s).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  }
  function say(form, msg) {
    var el = form.querySelector('[data-webauthn-error]');
    if (el) { el.textContent = msg; el.hidden = false; }
  }
  function run(form) {
    var o = JSON.parse(form.getAttribute('data-options'));
    o.challenge = toBuf(o.challenge);
    var p;
    if (form.getAttribute('data-webauthn') === 'register') {
      o.user.id = toBuf(o.user.id);
      (o.excludeCredentials || []).forEach(function (c) { c.id = toBuf(c.id); });
      p = navigator.credentials.create({ publicKey: o });
    } else {
      (o.allowCredentials || []).forEach(function (c) { c.id = toBuf(c.id); });
      p = navigator.credentials.get({ publicKey: o });
    }
    return p.then(function (cred) {
      var r = cred.response;
      var out = { id: cred.id, rawId: toB64u(cred.rawId), type: cred.type, clientExtensionResults: cred.getClientExtensionResults(), response: { clientDataJSON: toB64u(r.clientDataJSON) } };
      if (cred.authenticatorAttachment) out.authenticatorAttachment = cred.authenticatorAttachment;
      if (r.attestationObject) {
        out.response.attestationObject = toB64u(r.attestationObject);
        if (r.getTransports) out.response.transports = r.getTransports();
      } else {
        out.response.authenticatorData = toB64u(r.authenticatorData);
        out.response.signature = toB64u(r.signature);
        if (r.userHandle) out.response.userHandle = toB64u(r.userHandle);
      }
      form.elements.namedItem('credential').value = JSON.stringify(out);
      // submit() fires no submit event: no second ceremony.
      form.submit();
    });
  }
  var forms = document.querySelectorAll('form[data-webauthn]');
  for (var i = 0; i < forms.length; i++) {
    (function (form) {
      if (!window.PublicKeyCredential || !navigator.credentials) {
        say(form, 'This browser cannot use passkeys.');
        var b = form.querySelector('button');
        if (b) b.disabled = true;
        return;
      }
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        say(form, '');
        run(form).catch(function (err) {
          say(form, err && err.name === 'NotAllowedError' ? 'The passkey request was cancelled or timed out. Try again.' : 'The passkey could not be used (' + (err && err.name || 'error') + ').');
        });
      });
    })(forms[i]);
  }
})();
`;
