{#- A model's +schema is the Trino schema itself (landing, staging, marts: the ones roles/trino lets
    the pipelines user own), not dbt's default "<target schema>_<custom schema>". -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
