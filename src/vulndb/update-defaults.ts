/** osv.dev's public bucket; any mirror with the same `<Ecosystem>/all.zip` layout works. */
export const DEFAULT_OSV_BASE_URL = 'https://osv-vulnerabilities.storage.googleapis.com';
