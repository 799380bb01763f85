-- Organizations, the tier catalog, per-state configuration and branding.
-- Runs with search_path set to the `tenancy` schema.

CREATE TABLE tiers (
    code                    text PRIMARY KEY,
    display_name            text NOT NULL,
    rank                    integer NOT NULL UNIQUE,
    -- Zero means negotiated per contract (Custom tier): no fixed limit.
    max_users               bigint NOT NULL CHECK (max_users >= 0),
    max_properties          bigint NOT NULL CHECK (max_properties >= 0),
    max_claims              bigint NOT NULL CHECK (max_claims >= 0),
    max_ai_requests_monthly bigint NOT NULL CHECK (max_ai_requests_monthly >= 0),
    -- Zero means nationwide.
    max_states              integer NOT NULL CHECK (max_states >= 0),
    -- NULL means custom pricing.
    monthly_base_price      numeric(12, 2),
    currency_code           text NOT NULL DEFAULT 'USD'
);

CREATE TABLE features (
    code        text PRIMARY KEY,
    description text NOT NULL
);

CREATE TABLE tier_features (
    tier_code    text NOT NULL REFERENCES tiers (code),
    feature_code text NOT NULL REFERENCES features (code),
    PRIMARY KEY (tier_code, feature_code)
);

-- The guide's catalog.
INSERT INTO tiers (code, display_name, rank, max_users, max_properties, max_claims,
                   max_ai_requests_monthly, max_states, monthly_base_price) VALUES
    ('standard',     'Standard',     1,  50,  1000,  5000,  10000,  1,  99.00),
    ('professional', 'Professional', 2, 100,  2500, 15000,  25000,  3, 299.00),
    ('enterprise',   'Enterprise',   3, 500, 10000, 50000, 100000, 10, 999.00),
    ('custom',       'Custom',       4,   0,     0,     0,      0,  0,   NULL);

INSERT INTO features (code, description) VALUES
    ('basic_claims',         'Basic claims management'),
    ('damage_analysis',      'AI damage analysis'),
    ('document_management',  'Claim document management'),
    ('advanced_ai',          'Advanced AI tools'),
    ('inventory_scanner',    'Inventory scanner'),
    ('custom_reports',       'Custom reports'),
    ('custom_branding',      'Custom themes, logo and CSS'),
    ('predictive_modeling',  'Predictive modeling'),
    ('advanced_analytics',   'Advanced analytics'),
    ('sso',                  'Single sign-on through the organization''s identity provider'),
    ('custom_integrations',  'Custom integrations'),
    ('custom_development',   'Custom development');

INSERT INTO tier_features (tier_code, feature_code)
SELECT t.code, f.code
FROM tiers t
JOIN (VALUES
    ('basic_claims', 1), ('damage_analysis', 1), ('document_management', 1),
    ('advanced_ai', 2), ('inventory_scanner', 2), ('custom_reports', 2), ('custom_branding', 2),
    ('predictive_modeling', 3), ('advanced_analytics', 3), ('sso', 3), ('custom_integrations', 3),
    ('custom_development', 4)
) AS f (code, min_rank) ON t.rank >= f.min_rank;

CREATE TABLE state_configurations (
    state                      char(2) PRIMARY KEY,
    regulatory_requirements    text[] NOT NULL DEFAULT '{}',
    data_retention_days        integer NOT NULL CHECK (data_retention_days > 0),
    compliance_standards       text[] NOT NULL DEFAULT '{}',
    claim_filing_deadline_days integer NOT NULL DEFAULT 0 CHECK (claim_filing_deadline_days >= 0)
);

INSERT INTO state_configurations (state, regulatory_requirements, data_retention_days, compliance_standards) VALUES
    ('FL', '{public_adjuster_license}', 2555, '{FL_statute_627}'),
    ('GA', '{claims_adjuster_license}', 2190, '{GA_code_33-7}');

CREATE TABLE organizations (
    id                    uuid PRIMARY KEY,
    code                  text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$'),
    schema_name           text NOT NULL UNIQUE,
    display_name          text NOT NULL,
    primary_contact_email text NOT NULL,
    tier                  text NOT NULL REFERENCES tiers (code),
    status                text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    suspension_reason     text NOT NULL DEFAULT '',
    allowed_states        text[] NOT NULL,
    primary_state         char(2) NOT NULL,
    data_residency_region text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK (primary_state = ANY (allowed_states))
);

-- Custom domains. Only verified domains route requests; domains an operator
-- sets at creation are verified, domains a tenant adds later wait for one.
CREATE TABLE organization_domains (
    domain          text PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    verified_at     timestamptz
);
CREATE INDEX organization_domains_organization ON organization_domains (organization_id);

CREATE TABLE organization_customizations (
    organization_id uuid PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    primary_color   text NOT NULL DEFAULT '#1d4ed8',
    secondary_color text NOT NULL DEFAULT '#0f172a',
    logo_url        text NOT NULL DEFAULT '',
    custom_css      text NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE feature_overrides (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    feature_code    text NOT NULL REFERENCES features (code),
    enabled         boolean NOT NULL,
    PRIMARY KEY (organization_id, feature_code)
);
