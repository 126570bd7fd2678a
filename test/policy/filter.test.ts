import { describe, expect, it } from 'vitest';

import {
  PolicyError,
  filterFindings,
  parseSeverity,
  parseSeverityList,
  shouldFail,
} from '../../src/policy/index.js';
import type { Severity } from '../../src/sbom/finding.js';
import { finding } from './helpers.js';

const of = (severity: Severity, fixedVersions: string[] = ['1.0']) =>
  finding({ id: `CVE-${severity}`, severity, fixedVersions });

describe('parseSeverityList', () => {
  it('parses case-insensitively, trims, and drops duplicates', () => {
    expect(parseSeverityList('CRITICAL,HIGH')).toEqual(['critical', 'high']);
    expect(parseSeverityList(' medium , Low,low,')).toEqual(['medium', 'low']);
    expect(parseSeverity('Unknown')).toBe('unknown');
  });

  it('lists the valid names when given an unknown one', () => {
    expect(() => parseSeverityList('HIGH,severe,moderate')).toThrow(PolicyError);
    expect(() => parseSeverityList('HIGH,severe,moderate')).toThrow(
      'unknown severities "severe", "moderate"; valid: critical, high, medium, low, none, unknown',
    );
    expect(() => parseSeverityList(' , ')).toThrow(/no severities given/);
    expect(() => parseSeverity('bad')).toThrow('unknown severity "bad"; valid: critical, high');
  });
});

describe('filterFindings', () => {
  const all = [of('critical'), of('high', []), of('low'), of('unknown', [])];

  it('keeps only the listed severities', () => {
    expect(filterFindings(all, { severities: ['critical', 'high'] }).map((f) => f.severity)).toEqual([
      'critical',
      'high',
    ]);
    expect(filterFindings(all, {})).toEqual(all);
    expect(filterFindings(all, { severities: [] })).toEqual(all);
  });

  it('drops findings without a fix when ignoreUnfixed is set', () => {
    expect(filterFindings(all, { ignoreUnfixed: true }).map((f) => f.severity)).toEqual(['critical', 'low']);
    expect(
      filterFindings(all, { severities: ['high', 'low'], ignoreUnfixed: true }).map((f) => f.severity),
    ).toEqual(['low']);
  });
});

describe('shouldFail', () => {
  it('fails when any finding is at or above the threshold', () => {
    expect(shouldFail([of('high')], 'high')).toBe(true);
    expect(shouldFail([of('critical')], 'high')).toBe(true);
    expect(shouldFail([of('medium'), of('low')], 'high')).toBe(false);
    expect(shouldFail([], 'low')).toBe(false);
    expect(shouldFail([of('none')], 'none')).toBe(true);
  });

  it('counts unknown-severity findings only when failing on unknown', () => {
    expect(shouldFail([of('unknown')], 'low')).toBe(false);
    expect(shouldFail([of('unknown')], 'none')).toBe(false);
    expect(shouldFail([of('unknown')], 'unknown')).toBe(true);
    expect(shouldFail([of('low')], 'unknown')).toBe(true);
    expect(shouldFail([], 'unknown')).toBe(false);
  });
});
