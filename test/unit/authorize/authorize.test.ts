import test from 'ava';
import { authorize, Decision } from '../../../src/authorize/index.js';
import type { Policy } from '../../../src/config/types.js';
import { Principal } from '../../../src/session/index.js';
import type { ServiceAccountRecord, UserRecord } from '../../../src/store/index.js';

// Decision is a const enum (inlined by tsc); pin its numbers too, since the
// handler and any other process compare the inlined values.
const ALLOW = 0;
const PRINCIPAL_NOT_ALLOWED = 1;
const FORBIDDEN = 2;

function policy(over: Partial<Policy> = {}): Policy {
  return { auth: 'required', allowUser: true, allowServiceAccount: true, roles: null, permissions: null, maxBody: 1024, maxInflight: 0, websocket: true, maxMessage: 1024, idleTimeoutMs: 60_000, maxSockets: 4, stepUp: null, rule: 'demo:/test/*', ...over };
}
/** A session's principal (src/session/authenticate.ts): built from the user record; the session record is not read by authorize. */
function user(roles: string[] = [], permissions: string[] = []): Principal {
  const u: UserRecord = { id: 'usr_1', directory: 'demo', email: 'a@example.com', name: 'A', displayName: '', status: 'active', roles, permissions, version: 1, createdAt: 0, updatedAt: 0, lastLoginAt: null };
  return new Principal('th', null, u, null, null);
}
/** A service-account key's principal: built from the account record. */
function sa(roles: string[] = [], permissions: string[] = []): Principal {
  const a: ServiceAccountRecord = { id: 'sa_1', projectId: 'demo', name: 'bot', status: 'active', roles, permissions, version: 1, createdAt: 0, updatedAt: 0 };
  return new Principal('key_1', null, null, null, a);
}

test('Decision values', (t) => {
  t.is(Decision.Allow as number, ALLOW);
  t.is(Decision.PrincipalNotAllowed as number, PRINCIPAL_NOT_ALLOWED);
  t.is(Decision.Forbidden as number, FORBIDDEN);
});

test('no roles and no permissions required: any accepted principal is allowed', (t) => {
  t.is(authorize(policy(), user()), ALLOW);
  t.is(authorize(policy(), sa()), ALLOW);
  t.is(authorize(policy(), user(['x'], ['y'])), ALLOW);
});

test('roles: any of', (t) => {
  const p = policy({ roles: ['admin', 'ops'] });
  t.is(authorize(p, user(['admin'])), ALLOW);
  t.is(authorize(p, user(['ops'])), ALLOW);
  t.is(authorize(p, user(['viewer', 'ops'])), ALLOW);
  t.is(authorize(p, user(['admin', 'ops'])), ALLOW);
  t.is(authorize(p, user(['viewer'])), FORBIDDEN);
  t.is(authorize(p, user([])), FORBIDDEN);
  t.is(authorize(p, sa(['ops'])), ALLOW);
  t.is(authorize(p, sa(['viewer'])), FORBIDDEN);
});

test('roles match exactly: no case folding, no prefix or substring match', (t) => {
  const p = policy({ roles: ['admin'] });
  t.is(authorize(p, user(['Admin'])), FORBIDDEN);
  t.is(authorize(p, user(['admins'])), FORBIDDEN);
  t.is(authorize(p, user(['adm'])), FORBIDDEN);
  t.is(authorize(p, user(['admin '])), FORBIDDEN);
  t.is(authorize(p, user(['admin,ops'])), FORBIDDEN);
});

test('permissions: all of', (t) => {
  const p = policy({ permissions: ['a:read', 'a:write'] });
  t.is(authorize(p, user([], ['a:read', 'a:write'])), ALLOW);
  t.is(authorize(p, user([], ['a:write', 'x', 'a:read'])), ALLOW);
  t.is(authorize(p, user([], ['a:read'])), FORBIDDEN);
  t.is(authorize(p, user([], ['a:write'])), FORBIDDEN);
  t.is(authorize(p, user([], [])), FORBIDDEN);
  t.is(authorize(p, user([], ['a:*'])), FORBIDDEN, 'no wildcard expansion');
  t.is(authorize(p, user([], ['A:READ', 'A:WRITE'])), FORBIDDEN);
  t.is(authorize(p, sa([], ['a:read', 'a:write'])), ALLOW);
  t.is(authorize(p, sa([], ['a:read'])), FORBIDDEN);
});

test('roles do not stand in for permissions, nor permissions for roles', (t) => {
  t.is(authorize(policy({ roles: ['admin'] }), user([], ['admin'])), FORBIDDEN);
  t.is(authorize(policy({ permissions: ['admin:write'] }), user(['admin:write'], [])), FORBIDDEN);
});

test('roles and permissions both required: a role from the list AND every permission', (t) => {
  const p = policy({ roles: ['admin', 'ops'], permissions: ['admin:write', 'audit:read'] });
  t.is(authorize(p, user(['ops'], ['admin:write', 'audit:read'])), ALLOW);
  t.is(authorize(p, user(['admin'], ['audit:read', 'admin:write', 'more'])), ALLOW);
  t.is(authorize(p, user(['viewer'], ['admin:write', 'audit:read'])), FORBIDDEN, 'permissions without a role');
  t.is(authorize(p, user(['admin'], ['admin:write'])), FORBIDDEN, 'role with only some permissions');
  t.is(authorize(p, user(['admin'], [])), FORBIDDEN, 'role without permissions');
  t.is(authorize(p, user([], [])), FORBIDDEN);
});

test('principal kind not allowed → PrincipalNotAllowed, checked before roles and permissions', (t) => {
  const usersOnly = policy({ allowServiceAccount: false, roles: ['admin'], permissions: ['p'] });
  t.is(authorize(usersOnly, sa(['admin'], ['p'])), PRINCIPAL_NOT_ALLOWED);
  t.is(authorize(usersOnly, sa([], [])), PRINCIPAL_NOT_ALLOWED);
  t.is(authorize(usersOnly, user(['admin'], ['p'])), ALLOW);
  t.is(authorize(usersOnly, user([], [])), FORBIDDEN);

  const keysOnly = policy({ allowUser: false });
  t.is(authorize(keysOnly, user(['admin'], ['p'])), PRINCIPAL_NOT_ALLOWED);
  t.is(authorize(keysOnly, sa()), ALLOW);

  const nobody = policy({ allowUser: false, allowServiceAccount: false });
  t.is(authorize(nobody, user()), PRINCIPAL_NOT_ALLOWED);
  t.is(authorize(nobody, sa()), PRINCIPAL_NOT_ALLOWED);
});

test('an empty required-roles list admits nobody (fail closed); an empty permissions list requires nothing', (t) => {
  t.is(authorize(policy({ roles: [] }), user(['admin'])), FORBIDDEN);
  t.is(authorize(policy({ permissions: [] }), user()), ALLOW);
});

test('an unknown principal type is treated as a service account, never as a user', (t) => {
  const odd = { ...user(), type: 'robot' } as unknown as Principal;
  t.is(authorize(policy({ allowServiceAccount: false }), odd), PRINCIPAL_NOT_ALLOWED);
});
