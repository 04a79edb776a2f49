-- The application's database role: it reads and writes rows but owns no table, so it can neither drop nor disable
-- the audit table's append-only triggers, nor TRUNCATE, nor change the schema. The migration role (the owner of the
-- tables, :owner) runs `manage.py migrate`; web, worker and beat connect as :app.
--
-- Run once per database as a superuser (docker-compose does it from deploy/postgres/10-app-role.sh on first start):
--   psql -v owner=trialsite -v app=trialsite_app -v app_password=SECRET -d trialsite -f deploy/postgres/app-role.sql
-- The default privileges cover every table and sequence the owner creates later (new migrations).

CREATE ROLE :"app" LOGIN PASSWORD :'app_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO :"app";
