-- A legal hold stops every purge of the organization's audit trail.
ALTER TABLE organizations ADD COLUMN legal_hold boolean NOT NULL DEFAULT false;
