import { describe, expect, it } from 'vitest';
import { modelAllowed } from '../../src/accounts/guard.js';
import {
  domainAllowed,
  invalidIpEntry,
  ipMatcher,
  normalizeDomain,
  requestHost,
  resourceOf,
  scopeAllows,
} from '../../src/accounts/restrictions.js';
import { permissionMatches } from '../../src/accounts/roles.js';

describe('key restriction rules', () => {
  it('IP allowlists: exact, CIDR, IPv6, IPv4-mapped IPv6', () => {
    const m = ipMatcher(['192.0.2.10', '198.51.100.0/24', '2001:db8:abcd::/48', '::1']);
    expect(m('192.0.2.10')).toBe(true);
    expect(m('192.0.2.11')).toBe(false);
    expect(m('198.51.100.200')).toBe(true);
    expect(m('198.51.101.1')).toBe(false);
    expect(m('::ffff:198.51.100.7')).toBe(true);
    expect(m('2001:db8:abcd:12::1')).toBe(true);
    expect(m('2001:db8:abce::1')).toBe(false);
    expect(m('::1')).toBe(true);
    expect(m('not-an-ip')).toBe(false);
    expect(invalidIpEntry('10.0.0.0/33')).toBeTruthy();
    expect(invalidIpEntry('2001:db8::/129')).toBeTruthy();
    expect(invalidIpEntry('10.0.0.0/8/1')).toBeTruthy();
    expect(invalidIpEntry('example.com')).toBeTruthy();
    expect(invalidIpEntry('2001:db8::/64')).toBeNull();
  });

  it('domains: exact or subdomain of the Origin/Referer host', () => {
    expect(normalizeDomain('https://App.Example.com/path')).toBe('app.example.com');
    expect(normalizeDomain('*.example.com')).toBe('example.com');
    expect(requestHost(undefined, 'https://a.example.com/x')).toBe('a.example.com');
    expect(requestHost('null', undefined)).toBeNull();
    expect(domainAllowed('a.example.com', ['example.com'])).toBe(true);
    expect(domainAllowed('notexample.com', ['example.com'])).toBe(false);
    expect(domainAllowed(null, ['example.com'])).toBe(false);
  });

  it('scopes and resources', () => {
    expect(resourceOf('/v1/chat/completions')).toBe('chat');
    expect(resourceOf('/user/api-keys/:id/rotate')).toBe('api_keys');
    expect(resourceOf('/user/balance')).toBe('balance');
    expect(scopeAllows({ read: ['*'] }, 'read', 'balance')).toBe(true);
    expect(scopeAllows({ read: ['*'] }, 'write', 'chat')).toBe(false);
    expect(scopeAllows({ '*': ['chat'] }, 'write', 'chat')).toBe(true);
    expect(scopeAllows({ write: ['api_*'] }, 'write', 'api_keys')).toBe(true);
  });

  it('models and permissions', () => {
    expect(modelAllowed(['gpt-4o-mini'], 'openai/gpt-4o-mini')).toBe(true);
    expect(modelAllowed(['openai/*'], 'openai/gpt-4o')).toBe(true);
    expect(modelAllowed(['openai/*'], 'anthropic/claude')).toBe(false);
    expect(permissionMatches('*', 'users:read')).toBe(true);
    expect(permissionMatches('users:*', 'users:write')).toBe(true);
    expect(permissionMatches('*:read', 'audit:read')).toBe(true);
    expect(permissionMatches('users:read', 'users:write')).toBe(false);
    expect(permissionMatches('users:*', '*')).toBe(false);
  });
});
