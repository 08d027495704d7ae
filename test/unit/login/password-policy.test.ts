import test from 'ava';
import { checkNewPassword, commonListSize, MAX_PASSWORD_CHARS } from '../../../src/login/index.js';

test('length: at least 8 characters (code points), up to 256 accepted', (t) => {
  t.is(checkNewPassword('short12', 'a@b.c'), 'too_short');
  t.is(checkNewPassword('😀😀😀😀😀😀😀😀', 'a@b.c'), 'ok', '8 code points, 32 bytes');
  t.is(checkNewPassword('x'.repeat(64) + 'Y', 'a@b.c'), 'ok', '≥ 64 accepted');
  t.is(checkNewPassword('q'.repeat(MAX_PASSWORD_CHARS - 1) + 'z', 'a@b.c'), 'ok');
  t.is(checkNewPassword('q'.repeat(MAX_PASSWORD_CHARS + 1), 'a@b.c'), 'too_long');
});

test('common passwords are refused (any case); no composition rules', (t) => {
  t.true(commonListSize() > 10_000);
  t.is(checkNewPassword('password1', 'a@b.c'), 'common');
  t.is(checkNewPassword('PassWord1', 'a@b.c'), 'common');
  t.is(checkNewPassword('12345678', 'a@b.c'), 'common');
  t.is(checkNewPassword('qwertyuiop', 'a@b.c'), 'common');
  t.is(checkNewPassword('correct horse battery staple', 'a@b.c'), 'ok', 'lower-case words only is fine');
});

test('not the email or its local part', (t) => {
  t.is(checkNewPassword('someone@example.com', 'someone@example.com'), 'like_email');
  t.is(checkNewPassword('Someone1x', 'someone1x@example.com'), 'like_email');
});

test('spaces and case are kept exactly (no trimming, no folding)', (t) => {
  t.is(checkNewPassword('  padded pass  ', 'a@b.c'), 'ok');
});
